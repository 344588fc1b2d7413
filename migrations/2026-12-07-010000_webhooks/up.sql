-- URLs instructors registered to hear of awards, signed with a per-webhook secret
-- (Standard Webhooks: `whsec_` and base64).
CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    instructor_id BIGINT NOT NULL REFERENCES instructors (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    removed_at BIGINT
);

-- The webhook outbox: one row per event and webhook, delivered with retries. The body is
-- fixed at the first attempt, so every retry sends the same message under the same id.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    award_id BIGINT NOT NULL REFERENCES awards (id) ON DELETE CASCADE,
    payload TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, id);

-- Events are queued by the changes themselves, inside their transactions, whichever surface
-- (Reader, command line, API) or process made them: nothing is missed and a rollback queues nothing.
CREATE TRIGGER webhook_award_created AFTER INSERT ON awards BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, award_id, next_attempt_at, created_at, updated_at)
    SELECT id, 'award.created', NEW.id, NEW.issued_on, NEW.issued_on, NEW.issued_on
    FROM webhooks WHERE removed_at IS NULL;
END;
CREATE TRIGGER webhook_award_revoked AFTER UPDATE OF revoked_at ON awards
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, award_id, next_attempt_at, created_at, updated_at)
    SELECT id, 'award.revoked', NEW.id, NEW.revoked_at, NEW.revoked_at, NEW.revoked_at
    FROM webhooks WHERE removed_at IS NULL;
END;
CREATE TRIGGER webhook_award_recorded AFTER UPDATE OF block_hash ON chain_records
WHEN OLD.block_hash IS NULL AND NEW.block_hash IS NOT NULL AND NEW.kind = 'award' AND NEW.award_id IS NOT NULL BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, award_id, next_attempt_at, created_at, updated_at)
    SELECT id, 'award.recorded', NEW.award_id, CAST(strftime('%s', 'now') AS INTEGER),
        CAST(strftime('%s', 'now') AS INTEGER), CAST(strftime('%s', 'now') AS INTEGER)
    FROM webhooks WHERE removed_at IS NULL;
END;
