DROP TABLE awards;
ALTER TABLE links DROP COLUMN starred;
ALTER TABLE links DROP COLUMN dismissed;
ALTER TABLE tasks DROP COLUMN expires_days;
