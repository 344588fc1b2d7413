DROP INDEX mentions_moderation;
DROP INDEX mentions_source;
DROP INDEX mentions_client;
ALTER TABLE mentions DROP COLUMN moderation;
ALTER TABLE mentions DROP COLUMN client;
ALTER TABLE feeds DROP COLUMN pending_name;
DROP TABLE join_mails;
DROP TABLE sessions;
