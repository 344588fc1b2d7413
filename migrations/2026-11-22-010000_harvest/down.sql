DROP TABLE link_tasks;
DROP TABLE links;
DROP TABLE feeds;
DROP TABLE authors;
