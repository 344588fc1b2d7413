-- The mail that tells an instructor a token or webhook was made in their name, and those that
-- ask a learner to confirm a subscription or that they want to be forgotten, wait in the
-- outbox too, so that confirmations and notices go through the one queue: instructor_id names
-- the instructor and payload what was made, where and how (JSON, never a secret); feed_id the
-- subscription waiting for its confirmation; author_id the learner.
-- Each mail is written when it is sent. The CHECK changes, which SQLite does only by rebuilding the table;
-- the dashboard's triggers on it (and the one on awards that reads it) are made again as they were.
DROP TRIGGER dashboard_award_delivery_move;
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
    instructor_id INTEGER REFERENCES instructors(id) ON DELETE CASCADE,
    payload TEXT,
    author_id INTEGER REFERENCES authors(id) ON DELETE CASCADE,
    feed_id INTEGER REFERENCES feeds(id) ON DELETE CASCADE,
    CHECK (award_id IS NOT NULL OR newsletter_issue_id IS NOT NULL OR newsletter_subscriber_id IS NOT NULL OR instructor_id IS NOT NULL
           OR author_id IS NOT NULL OR feed_id IS NOT NULL)
);
INSERT INTO outbox_rebuilt (id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error, endpoint, location,
    created_at, updated_at, newsletter_issue_id, newsletter_subscriber_id)
    SELECT id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error, endpoint, location,
    created_at, updated_at, newsletter_issue_id, newsletter_subscriber_id FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_award ON outbox(award_id);
CREATE UNIQUE INDEX outbox_newsletter ON outbox(newsletter_issue_id, target) WHERE newsletter_issue_id IS NOT NULL;
CREATE INDEX outbox_newsletter_reader ON outbox(newsletter_subscriber_id) WHERE newsletter_subscriber_id IS NOT NULL;
CREATE INDEX outbox_instructor ON outbox(instructor_id) WHERE instructor_id IS NOT NULL;
CREATE INDEX outbox_author ON outbox(author_id) WHERE author_id IS NOT NULL;
CREATE INDEX outbox_feed ON outbox(feed_id) WHERE feed_id IS NOT NULL;

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
