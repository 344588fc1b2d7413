DROP INDEX awards_dashboard;
CREATE INDEX awards_task ON awards(task_id, author_id);
