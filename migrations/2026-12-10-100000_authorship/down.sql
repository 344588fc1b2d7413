DROP INDEX links_unchecked;
DROP INDEX links_url;
ALTER TABLE feeds DROP COLUMN joined_url;
ALTER TABLE links DROP COLUMN duplicate_of;
ALTER TABLE links DROP COLUMN authorship;
