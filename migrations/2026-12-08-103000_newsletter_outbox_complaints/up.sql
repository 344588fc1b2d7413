-- A reader's confirmation mail waits in the outbox as an award's email does, so an SMTP outage
-- or a restart delays it instead of losing it: newsletter_subscriber_id names the reader, and
-- the mail is written when it is sent. The CHECK changes, which SQLite does only by rebuilding
-- the table.
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
    newsletter_subscriber_id INTEGER REFERENCES newsletter_subscribers(id) ON DELETE CASCADE,
    CHECK (award_id IS NOT NULL OR newsletter_issue_id IS NOT NULL OR newsletter_subscriber_id IS NOT NULL)
);
INSERT INTO outbox_rebuilt (id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error,
                            endpoint, location, created_at, updated_at, newsletter_issue_id)
    SELECT id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error, endpoint, location,
           created_at, updated_at, newsletter_issue_id FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_award ON outbox(award_id);
CREATE UNIQUE INDEX outbox_newsletter ON outbox(newsletter_issue_id, target) WHERE newsletter_issue_id IS NOT NULL;
CREATE INDEX outbox_newsletter_reader ON outbox(newsletter_subscriber_id) WHERE newsletter_subscriber_id IS NOT NULL;

-- Complaints about the newsletter (a reader marked it as spam), as the instructor or the
-- command line records them; the reader is unsubscribed in the same transaction.
CREATE TABLE newsletter_complaints (
    id INTEGER PRIMARY KEY NOT NULL,
    subscriber_id INTEGER NOT NULL REFERENCES newsletter_subscribers(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX newsletter_complaints_reader ON newsletter_complaints(subscriber_id);
