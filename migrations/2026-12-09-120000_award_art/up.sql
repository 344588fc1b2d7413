-- The artwork an award was baked from, stored once for every award made with it: an award
-- names it by hash and its baked images are made from it and its Assertion when asked for.
-- Older awards keep their images in awards.baked_svg and awards.baked_png.
CREATE TABLE award_art (
    sha256 TEXT PRIMARY KEY NOT NULL,
    svg BLOB NOT NULL,
    png BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
ALTER TABLE awards ADD COLUMN art_sha256 TEXT REFERENCES award_art(sha256);
