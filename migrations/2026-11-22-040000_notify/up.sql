-- Notifications to send (Webmentions and emails), with their delivery state, so that a
-- restart loses nothing. status: queued, sent, no_endpoint, failed (not retried), gave_up.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    award_id INTEGER NOT NULL REFERENCES awards(id) ON DELETE RESTRICT,
    source TEXT,
    target TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    endpoint TEXT,
    location TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_award ON outbox(award_id);

-- Webmentions received: pending until the source is fetched and found to link to the target.
CREATE TABLE mentions (
    id INTEGER PRIMARY KEY NOT NULL,
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    reason TEXT,
    received_at BIGINT NOT NULL,
    checked_at BIGINT,
    UNIQUE (source, target)
);
CREATE INDEX mentions_pending ON mentions(status, received_at);
CREATE INDEX mentions_target ON mentions(target, status);
