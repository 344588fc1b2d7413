-- Whose writing a harvested post is. `authorship` is `own` (on the learner's site),
-- `elsewhere` (on another site: never tied by hashtag, awarded only with an explicit
-- confirmation), `duplicate` (another learner's feed delivered the same URL first:
-- `duplicate_of` names that learner; never awarded to this one) or `unchecked` (harvested
-- before these rules: treated as `elsewhere` until the first housekeeping pass after the
-- upgrade classifies it by the same rules as a harvest).
ALTER TABLE links ADD COLUMN authorship TEXT NOT NULL DEFAULT 'unchecked';
ALTER TABLE links ADD COLUMN duplicate_of BIGINT;
-- The address a learner (or instructor) gave when the feed was added: its site counts as the
-- learner's own.
ALTER TABLE feeds ADD COLUMN joined_url TEXT;
-- The first learner whose feed delivered a URL owns it: looked up by URL once per feed.
CREATE INDEX links_url ON links (url) WHERE url IS NOT NULL;
CREATE INDEX links_unchecked ON links (feed_id) WHERE authorship = 'unchecked';
