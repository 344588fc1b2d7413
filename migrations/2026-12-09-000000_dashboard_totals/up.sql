-- The dashboard's award and delivery figures as running totals. Counted on each page view,
-- they join every award of a course to its chain record and its notifications: thousands of
-- lookups. Triggers keep them as awards, records and notifications change, so a page view
-- reads a few rows per task.

-- Per task: awards not withdrawn, and how many of them have their record in a block. A
-- record's block_hash is set only while its block is on the main chain (a reorganisation
-- gives the records of the blocks that leave it back to the pool), so following block_hash
-- follows the main chain.
CREATE TABLE dashboard_task_awards (
    task_id INTEGER PRIMARY KEY NOT NULL,
    awards INTEGER NOT NULL,
    recorded INTEGER NOT NULL
);

-- Per task: the notifications of its awards by state, and whether they were tried yet.
CREATE TABLE dashboard_task_delivery (
    task_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    tried INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (task_id, status, tried)
) WITHOUT ROWID;

INSERT INTO dashboard_task_awards (task_id, awards, recorded)
SELECT aw.task_id, count(DISTINCT aw.id), count(r.id)
FROM awards aw LEFT JOIN chain_records r ON r.award_id = aw.id AND r.kind = 'award' AND r.block_hash IS NOT NULL
WHERE aw.withdrawn_at IS NULL GROUP BY aw.task_id;

INSERT INTO dashboard_task_delivery (task_id, status, tried, n)
SELECT aw.task_id, o.status, o.attempts > 0, count(*)
FROM outbox o JOIN awards aw ON aw.id = o.award_id GROUP BY 1, 2, 3;

-- An award counts while it is not withdrawn, with the records in a block that name it
-- (none yet when it is made: its record is stored after it).
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

-- A record counts for its award's task while it is in a block; the pool's records and other
-- institutions' records (no award_id) count for nothing.
CREATE TRIGGER dashboard_record_insert AFTER INSERT ON chain_records
WHEN NEW.kind = 'award' AND NEW.award_id IS NOT NULL AND NEW.block_hash IS NOT NULL
BEGIN
    UPDATE dashboard_task_awards SET recorded = recorded + 1
    WHERE task_id = (SELECT task_id FROM awards WHERE id = NEW.award_id AND withdrawn_at IS NULL);
END;

CREATE TRIGGER dashboard_record_update AFTER UPDATE OF award_id, kind, block_hash ON chain_records
WHEN (OLD.kind = 'award' AND OLD.award_id IS NOT NULL AND OLD.block_hash IS NOT NULL)
  OR (NEW.kind = 'award' AND NEW.award_id IS NOT NULL AND NEW.block_hash IS NOT NULL)
BEGIN
    UPDATE dashboard_task_awards SET recorded = recorded - 1
    WHERE OLD.kind = 'award' AND OLD.block_hash IS NOT NULL
      AND task_id = (SELECT task_id FROM awards WHERE id = OLD.award_id AND withdrawn_at IS NULL);
    UPDATE dashboard_task_awards SET recorded = recorded + 1
    WHERE NEW.kind = 'award' AND NEW.block_hash IS NOT NULL
      AND task_id = (SELECT task_id FROM awards WHERE id = NEW.award_id AND withdrawn_at IS NULL);
END;

CREATE TRIGGER dashboard_record_delete AFTER DELETE ON chain_records
WHEN OLD.kind = 'award' AND OLD.award_id IS NOT NULL AND OLD.block_hash IS NOT NULL
BEGIN
    UPDATE dashboard_task_awards SET recorded = recorded - 1
    WHERE task_id = (SELECT task_id FROM awards WHERE id = OLD.award_id AND withdrawn_at IS NULL);
END;

-- Notifications of awards, by the bucket the dashboard shows: moved when their state, their
-- first attempt or their award changes; other updates (each retry's schedule) are left alone.
CREATE TRIGGER dashboard_outbox_insert AFTER INSERT ON outbox WHEN NEW.award_id IS NOT NULL
BEGIN
    INSERT INTO dashboard_task_delivery (task_id, status, tried, n)
    SELECT task_id, NEW.status, NEW.attempts > 0, 1 FROM awards WHERE id = NEW.award_id
    ON CONFLICT (task_id, status, tried) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER dashboard_outbox_update AFTER UPDATE OF award_id, status, attempts ON outbox
WHEN OLD.award_id IS NOT NEW.award_id OR OLD.status IS NOT NEW.status OR (OLD.attempts > 0) IS NOT (NEW.attempts > 0)
BEGIN
    UPDATE dashboard_task_delivery SET n = n - 1
    WHERE task_id = (SELECT task_id FROM awards WHERE id = OLD.award_id)
      AND status = OLD.status AND tried = (OLD.attempts > 0);
    INSERT INTO dashboard_task_delivery (task_id, status, tried, n)
    SELECT task_id, NEW.status, NEW.attempts > 0, 1 FROM awards WHERE id = NEW.award_id
    ON CONFLICT (task_id, status, tried) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER dashboard_outbox_delete AFTER DELETE ON outbox WHEN OLD.award_id IS NOT NULL
BEGIN
    UPDATE dashboard_task_delivery SET n = n - 1
    WHERE task_id = (SELECT task_id FROM awards WHERE id = OLD.award_id)
      AND status = OLD.status AND tried = (OLD.attempts > 0);
END;

-- An award moved to another task takes its notifications along.
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

-- The feed health figures and the erroring feeds read this index alone.
CREATE INDEX feeds_health ON feeds(status, error_count);
