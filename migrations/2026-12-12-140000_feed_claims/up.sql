-- A learner's claim of a feed an instructor added (by hand, OPML or CSV): the feed belongs to
-- the learner once the claim is confirmed by mail. One claim per feed: a newer claim replaces
-- one still waiting. A feed is a learner's own when someone holds its private link
-- (feeds.manage_token_hash): joined, or claimed.
CREATE TABLE feed_claims (
    feed_id INTEGER PRIMARY KEY NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    -- Where the confirmation goes: the address given, or the address on file when the
    -- learner already has another one.
    email TEXT NOT NULL COLLATE NOCASE,
    -- The name and public-name choice given on the join form; applied on confirmation only
    -- when `adopt` (the confirmation goes to the address given).
    name TEXT NOT NULL,
    name_shown TEXT NOT NULL DEFAULT 'given',
    pseudonym TEXT,
    adopt BOOLEAN NOT NULL,
    -- SHA-256 (hex) of the tokens of the confirmation mail; the private link's hash moves to
    -- the feed on confirmation.
    confirm_token_hash TEXT UNIQUE,
    manage_token_hash TEXT UNIQUE,
    requested_at BIGINT NOT NULL,
    -- When the learner confirmed: the instructor sees "claimed by the learner" from then on.
    -- What was typed (the address among it) is emptied then.
    confirmed_at BIGINT
);

-- A roster import looks feeds up by the blog address they were added with, as well as by their
-- own address.
CREATE INDEX feeds_joined_url ON feeds(joined_url) WHERE joined_url IS NOT NULL;
