-- The dashboard's award counts read the index alone: an award row holds its baked images
-- before these columns, so reading the table walks each award's overflow pages.
DROP INDEX awards_task;
CREATE INDEX awards_dashboard ON awards(task_id, withdrawn_at, revoked_at, author_id, recipient_email);
