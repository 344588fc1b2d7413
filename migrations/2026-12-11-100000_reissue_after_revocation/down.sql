-- Back to one award of a badge per address, revoked or not; fails while a badge was re-issued.
PRAGMA foreign_keys = OFF;
PRAGMA legacy_alter_table = ON;
BEGIN;
CREATE TABLE awards_rebuilt (
    id INTEGER PRIMARY KEY NOT NULL,
    -- Random id used in the public URL (/assertions/{public_id}).
    public_id TEXT NOT NULL UNIQUE,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE RESTRICT,
    link_id INTEGER REFERENCES links(id) ON DELETE RESTRICT,
    author_id INTEGER REFERENCES authors(id) ON DELETE RESTRICT,
    -- Private: used to notify the learner and to refuse a second award; never published.
    recipient_email TEXT NOT NULL COLLATE NOCASE,
    recipient_name TEXT,
    salt TEXT NOT NULL,
    -- "sha256$" + hex(sha256(email + salt))
    identity TEXT NOT NULL,
    evidence_url TEXT,
    narrative TEXT,
    issued_on BIGINT NOT NULL,
    expires BIGINT,
    revoked_at BIGINT,
    revocation_reason TEXT,
    awarded_by INTEGER REFERENCES instructors(id) ON DELETE SET NULL,
    -- The Assertion document as published, and the baked images.
    assertion_json TEXT NOT NULL,
    baked_svg BLOB NOT NULL,
    baked_png BLOB NOT NULL,
    withdrawn_at BIGINT,
    art_sha256 TEXT REFERENCES award_art(sha256),
    UNIQUE (task_id, recipient_email)
);
INSERT INTO awards_rebuilt (id, public_id, task_id, link_id, author_id, recipient_email, recipient_name, salt,
                            identity, evidence_url, narrative, issued_on, expires, revoked_at, revocation_reason,
                            awarded_by, assertion_json, baked_svg, baked_png, withdrawn_at, art_sha256)
    SELECT id, public_id, task_id, link_id, author_id, recipient_email, recipient_name, salt, identity, evidence_url,
           narrative, issued_on, expires, revoked_at, revocation_reason, awarded_by, assertion_json, baked_svg,
           baked_png, withdrawn_at, art_sha256 FROM awards;
DROP TABLE awards;
ALTER TABLE awards_rebuilt RENAME TO awards;

CREATE INDEX awards_link ON awards(link_id);
CREATE INDEX awards_author ON awards(author_id);
CREATE INDEX awards_revoked ON awards(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX awards_dashboard ON awards(task_id, withdrawn_at, revoked_at, author_id, recipient_email);

CREATE TRIGGER doc_generation_awards_update AFTER UPDATE ON awards BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_awards_delete AFTER DELETE ON awards BEGIN UPDATE doc_generation SET n = n + 1; END;
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
CREATE TRIGGER dashboard_award_insert AFTER INSERT ON awards WHEN NEW.withdrawn_at IS NULL
BEGIN
    INSERT INTO dashboard_task_awards (task_id, awards, recorded)
    SELECT NEW.task_id, 1, (SELECT count(*) FROM chain_records
                            WHERE award_id = NEW.id AND kind = 'award' AND block_hash IS NOT NULL)
    WHERE true
    ON CONFLICT (task_id) DO UPDATE SET awards = awards + 1, recorded = recorded + excluded.recorded;
END;
CREATE TRIGGER dashboard_award_update AFTER UPDATE OF task_id, withdrawn_at ON awards
WHEN OLD.task_id IS NOT NEW.task_id OR (OLD.withdrawn_at IS NULL) IS NOT (NEW.withdrawn_at IS NULL)
BEGIN
    UPDATE dashboard_task_awards SET awards = awards - 1, recorded = recorded - (
        SELECT count(*) FROM chain_records WHERE award_id = OLD.id AND kind = 'award' AND block_hash IS NOT NULL)
    WHERE OLD.withdrawn_at IS NULL AND task_id = OLD.task_id;
    INSERT INTO dashboard_task_awards (task_id, awards, recorded)
    SELECT NEW.task_id, 1, (SELECT count(*) FROM chain_records
                            WHERE award_id = NEW.id AND kind = 'award' AND block_hash IS NOT NULL)
    WHERE NEW.withdrawn_at IS NULL
    ON CONFLICT (task_id) DO UPDATE SET awards = awards + 1, recorded = recorded + excluded.recorded;
END;
CREATE TRIGGER dashboard_award_delete AFTER DELETE ON awards WHEN OLD.withdrawn_at IS NULL
BEGIN
    UPDATE dashboard_task_awards SET awards = awards - 1, recorded = recorded - (
        SELECT count(*) FROM chain_records WHERE award_id = OLD.id AND kind = 'award' AND block_hash IS NOT NULL)
    WHERE task_id = OLD.task_id;
END;
CREATE TRIGGER dashboard_award_delivery_move AFTER UPDATE OF task_id ON awards WHEN OLD.task_id IS NOT NEW.task_id
BEGIN
    UPDATE dashboard_task_delivery SET n = n - (
        SELECT count(*) FROM outbox o WHERE o.award_id = OLD.id AND o.status = dashboard_task_delivery.status
          AND (o.attempts > 0) = dashboard_task_delivery.tried)
    WHERE task_id = OLD.task_id;
    INSERT INTO dashboard_task_delivery (task_id, status, tried, n)
    SELECT NEW.task_id, status, attempts > 0, count(*) FROM outbox WHERE award_id = NEW.id GROUP BY 2, 3
    ON CONFLICT (task_id, status, tried) DO UPDATE SET n = n + excluded.n;
END;
COMMIT;
PRAGMA legacy_alter_table = OFF;
PRAGMA foreign_keys = ON;
