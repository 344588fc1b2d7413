-- An award whose learner asked to be forgotten: the row stays (the chain's records point at
-- it, and its URL answers 410 Gone), without the salt or anything that names the person.
ALTER TABLE awards ADD COLUMN withdrawn_at BIGINT;

-- That a learner was forgotten, when, and on whose request; never who.
-- actor: cli (the command line), instructor, learner (from their private link).
CREATE TABLE forget_events (
    id INTEGER PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    instructor_id INTEGER REFERENCES instructors(id) ON DELETE SET NULL,
    awards_withdrawn BIGINT NOT NULL,
    posts_deleted BIGINT NOT NULL
);

-- A learner's own request to be forgotten, made from their private link and waiting for the
-- link mailed to them (valid 48 hours). Only the token's SHA-256 is kept.
CREATE TABLE forget_requests (
    token_hash TEXT PRIMARY KEY NOT NULL,
    author_id INTEGER NOT NULL REFERENCES authors(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

-- How a learner's name appears on public pages and in badges: given (the name as typed),
-- initials, or pseudonym (the text in `pseudonym`). Instructors always see `name`. An award
-- keeps the name it was issued with.
ALTER TABLE authors ADD COLUMN name_shown TEXT NOT NULL DEFAULT 'given';
ALTER TABLE authors ADD COLUMN pseudonym TEXT;
