DROP INDEX awards_task;
DROP TRIGGER dashboard_link_update;
DROP TRIGGER dashboard_link_delete;
DROP TRIGGER dashboard_tie_update;
DROP TRIGGER dashboard_tie_delete;
DROP TRIGGER dashboard_tie_insert;
DROP TABLE dashboard_task_authors;
DROP TABLE dashboard_task_days;
