-- The offline demo: sample learners whose blogs this instance serves itself under
-- /demo/blogs/{slug}/. Everything here is demo-only; `cairn demo --remove` empties it.

-- What the demo seeded in the shared tables (the course, the instructor), by key.
CREATE TABLE demo_state (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE demo_learners (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    -- rss, atom or json: the feed format the blog serves.
    format TEXT NOT NULL,
    about TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE demo_posts (
    id INTEGER PRIMARY KEY NOT NULL,
    learner_id INTEGER NOT NULL REFERENCES demo_learners(id) ON DELETE CASCADE,
    slug TEXT NOT NULL,
    title TEXT NOT NULL,
    -- Paragraphs separated by blank lines, plain text.
    body TEXT NOT NULL,
    -- Space-separated feed categories.
    categories TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    UNIQUE (learner_id, slug)
);
CREATE INDEX demo_posts_learner ON demo_posts(learner_id, published_at);

CREATE TABLE demo_mentions (
    id INTEGER PRIMARY KEY NOT NULL,
    post_id INTEGER NOT NULL REFERENCES demo_posts(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The source page's title once verified.
    title TEXT,
    reason TEXT,
    received_at BIGINT NOT NULL,
    checked_at BIGINT,
    UNIQUE (post_id, source)
);
CREATE INDEX demo_mentions_pending ON demo_mentions(id) WHERE status = 'pending';
