ALTER TABLE authors DROP COLUMN pseudonym;
ALTER TABLE authors DROP COLUMN name_shown;
DROP TABLE forget_requests;
DROP TABLE forget_events;
ALTER TABLE awards DROP COLUMN withdrawn_at;
