DROP TABLE newsletter_complaints;
DELETE FROM outbox WHERE award_id IS NULL AND newsletter_issue_id IS NULL;
CREATE TABLE outbox_rebuilt (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    award_id INTEGER REFERENCES awards(id) ON DELETE RESTRICT,
    source TEXT,
    target TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    endpoint TEXT,
    location TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    newsletter_issue_id INTEGER REFERENCES newsletter_issues(id) ON DELETE CASCADE,
    CHECK (award_id IS NOT NULL OR newsletter_issue_id IS NOT NULL)
);
INSERT INTO outbox_rebuilt SELECT id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error,
    endpoint, location, created_at, updated_at, newsletter_issue_id FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_award ON outbox(award_id);
CREATE UNIQUE INDEX outbox_newsletter ON outbox(newsletter_issue_id, target) WHERE newsletter_issue_id IS NOT NULL;
