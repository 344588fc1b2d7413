ALTER TABLE awards DROP COLUMN art_sha256;
DROP TABLE award_art;
