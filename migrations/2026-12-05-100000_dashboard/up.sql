-- The instructor dashboard's running totals. Counting posts per task and day, and learners
-- per task, straight from links would read every post of a course on each page view; these
-- tables keep the counts as posts are tied, untied, moved or deleted, so a page view reads a
-- few hundred rows whatever the number of posts.

-- Tied posts per task and UTC day (the day of publication, else of harvest).
CREATE TABLE dashboard_task_days (
    task_id INTEGER NOT NULL,
    day INTEGER NOT NULL,
    posts INTEGER NOT NULL,
    PRIMARY KEY (task_id, day)
) WITHOUT ROWID;

-- Tied posts per task and author.
CREATE TABLE dashboard_task_authors (
    task_id INTEGER NOT NULL,
    author_id INTEGER NOT NULL,
    posts INTEGER NOT NULL,
    PRIMARY KEY (task_id, author_id)
) WITHOUT ROWID;

INSERT INTO dashboard_task_days (task_id, day, posts)
SELECT lt.task_id, coalesce(l.published_at, l.harvested_at) / 86400, count(*)
FROM link_tasks lt JOIN links l ON l.id = lt.link_id WHERE lt.tied = 1 GROUP BY 1, 2;

INSERT INTO dashboard_task_authors (task_id, author_id, posts)
SELECT lt.task_id, l.author_id, count(*)
FROM link_tasks lt JOIN links l ON l.id = lt.link_id WHERE lt.tied = 1 GROUP BY 1, 2;

-- A tie counts once its link exists (links are inserted before their ties).
CREATE TRIGGER dashboard_tie_insert AFTER INSERT ON link_tasks WHEN NEW.tied = 1
BEGIN
    INSERT INTO dashboard_task_days (task_id, day, posts)
    SELECT NEW.task_id, coalesce(published_at, harvested_at) / 86400, 1 FROM links WHERE id = NEW.link_id
    ON CONFLICT (task_id, day) DO UPDATE SET posts = posts + 1;
    INSERT INTO dashboard_task_authors (task_id, author_id, posts)
    SELECT NEW.task_id, author_id, 1 FROM links WHERE id = NEW.link_id
    ON CONFLICT (task_id, author_id) DO UPDATE SET posts = posts + 1;
END;

-- A tie removed while its link stays. When the link itself is deleted, the cascade removes
-- the tie after the link is gone, so the subqueries find nothing: the link's own delete
-- trigger below has already taken its ties off.
CREATE TRIGGER dashboard_tie_delete AFTER DELETE ON link_tasks WHEN OLD.tied = 1
BEGIN
    UPDATE dashboard_task_days SET posts = posts - 1
    WHERE task_id = OLD.task_id
      AND day = (SELECT coalesce(published_at, harvested_at) / 86400 FROM links WHERE id = OLD.link_id);
    UPDATE dashboard_task_authors SET posts = posts - 1
    WHERE task_id = OLD.task_id AND author_id = (SELECT author_id FROM links WHERE id = OLD.link_id);
    DELETE FROM dashboard_task_days WHERE task_id = OLD.task_id AND posts <= 0
      AND day = (SELECT coalesce(published_at, harvested_at) / 86400 FROM links WHERE id = OLD.link_id);
    DELETE FROM dashboard_task_authors WHERE task_id = OLD.task_id AND posts <= 0
      AND author_id = (SELECT author_id FROM links WHERE id = OLD.link_id);
END;

-- Untying, retying or moving a tie: take the old one off, put the new one on.
CREATE TRIGGER dashboard_tie_update AFTER UPDATE OF link_id, task_id, tied ON link_tasks
WHEN OLD.tied IS NOT NEW.tied OR OLD.task_id IS NOT NEW.task_id OR OLD.link_id IS NOT NEW.link_id
BEGIN
    UPDATE dashboard_task_days SET posts = posts - 1
    WHERE OLD.tied = 1 AND task_id = OLD.task_id
      AND day = (SELECT coalesce(published_at, harvested_at) / 86400 FROM links WHERE id = OLD.link_id);
    UPDATE dashboard_task_authors SET posts = posts - 1
    WHERE OLD.tied = 1 AND task_id = OLD.task_id
      AND author_id = (SELECT author_id FROM links WHERE id = OLD.link_id);
    DELETE FROM dashboard_task_days WHERE task_id = OLD.task_id AND posts <= 0
      AND day = (SELECT coalesce(published_at, harvested_at) / 86400 FROM links WHERE id = OLD.link_id);
    DELETE FROM dashboard_task_authors WHERE task_id = OLD.task_id AND posts <= 0
      AND author_id = (SELECT author_id FROM links WHERE id = OLD.link_id);
    INSERT INTO dashboard_task_days (task_id, day, posts)
    SELECT NEW.task_id, coalesce(published_at, harvested_at) / 86400, 1 FROM links
    WHERE NEW.tied = 1 AND id = NEW.link_id
    ON CONFLICT (task_id, day) DO UPDATE SET posts = posts + 1;
    INSERT INTO dashboard_task_authors (task_id, author_id, posts)
    SELECT NEW.task_id, author_id, 1 FROM links WHERE NEW.tied = 1 AND id = NEW.link_id
    ON CONFLICT (task_id, author_id) DO UPDATE SET posts = posts + 1;
END;

-- A deleted link takes its ties off while it can still be read.
CREATE TRIGGER dashboard_link_delete BEFORE DELETE ON links
BEGIN
    UPDATE dashboard_task_days SET posts = posts - (
        SELECT count(*) FROM link_tasks lt WHERE lt.link_id = OLD.id AND lt.tied = 1 AND lt.task_id = dashboard_task_days.task_id)
    WHERE day = coalesce(OLD.published_at, OLD.harvested_at) / 86400
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = OLD.id AND tied = 1);
    UPDATE dashboard_task_authors SET posts = posts - 1
    WHERE author_id = OLD.author_id
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = OLD.id AND tied = 1);
    DELETE FROM dashboard_task_days WHERE posts <= 0 AND day = coalesce(OLD.published_at, OLD.harvested_at) / 86400
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = OLD.id AND tied = 1);
    DELETE FROM dashboard_task_authors WHERE posts <= 0 AND author_id = OLD.author_id
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = OLD.id AND tied = 1);
END;

-- A link whose date or author changes moves its ties' counts along.
CREATE TRIGGER dashboard_link_update AFTER UPDATE OF published_at, harvested_at, author_id ON links
WHEN coalesce(OLD.published_at, OLD.harvested_at) / 86400 IS NOT coalesce(NEW.published_at, NEW.harvested_at) / 86400
  OR OLD.author_id IS NOT NEW.author_id
BEGIN
    UPDATE dashboard_task_days SET posts = posts - 1
    WHERE day = coalesce(OLD.published_at, OLD.harvested_at) / 86400
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = NEW.id AND tied = 1);
    UPDATE dashboard_task_authors SET posts = posts - 1
    WHERE author_id = OLD.author_id
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = NEW.id AND tied = 1);
    DELETE FROM dashboard_task_days WHERE posts <= 0 AND day = coalesce(OLD.published_at, OLD.harvested_at) / 86400
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = OLD.id AND tied = 1);
    DELETE FROM dashboard_task_authors WHERE posts <= 0 AND author_id = OLD.author_id
      AND task_id IN (SELECT task_id FROM link_tasks WHERE link_id = OLD.id AND tied = 1);
    INSERT INTO dashboard_task_days (task_id, day, posts)
    SELECT task_id, coalesce(NEW.published_at, NEW.harvested_at) / 86400, 1 FROM link_tasks
    WHERE link_id = NEW.id AND tied = 1
    ON CONFLICT (task_id, day) DO UPDATE SET posts = posts + 1;
    INSERT INTO dashboard_task_authors (task_id, author_id, posts)
    SELECT task_id, NEW.author_id, 1 FROM link_tasks WHERE link_id = NEW.id AND tied = 1
    ON CONFLICT (task_id, author_id) DO UPDATE SET posts = posts + 1;
END;

-- Awards per task and learners with a badge per task.
CREATE INDEX awards_task ON awards(task_id, author_id);
