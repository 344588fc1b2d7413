-- Learners (and other writers) whose feeds are harvested.
CREATE TABLE authors (
    id INTEGER PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- NULL for authors imported without an address (OPML).
    email TEXT UNIQUE COLLATE NOCASE,
    created_at BIGINT NOT NULL
);

CREATE TABLE feeds (
    id INTEGER PRIMARY KEY NOT NULL,
    author_id INTEGER NOT NULL REFERENCES authors(id) ON DELETE RESTRICT,
    url TEXT NOT NULL UNIQUE,
    site_url TEXT,
    title TEXT NOT NULL DEFAULT '',
    -- pending (awaiting the learner's confirmation), active, paused, gone (410), removed
    status TEXT NOT NULL DEFAULT 'pending',
    -- SHA-256 (hex) of the learner's confirmation and management tokens; the tokens
    -- themselves are only ever in the learner's email.
    confirm_token_hash TEXT UNIQUE,
    manage_token_hash TEXT UNIQUE,
    etag TEXT,
    last_modified TEXT,
    next_poll_at BIGINT NOT NULL DEFAULT 0,
    last_polled_at BIGINT,
    last_success_at BIGINT,
    last_error TEXT,
    error_count INTEGER NOT NULL DEFAULT 0,
    items_harvested INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX feeds_due ON feeds(status, next_poll_at);
CREATE INDEX feeds_author ON feeds(author_id);

-- A harvested post.
CREATE TABLE links (
    id INTEGER PRIMARY KEY NOT NULL,
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE RESTRICT,
    author_id INTEGER NOT NULL REFERENCES authors(id) ON DELETE RESTRICT,
    -- What deduplicates items within a feed: 'id:' + the item id, else 'url:' + its URL.
    item_key TEXT NOT NULL,
    url TEXT,
    title TEXT NOT NULL,
    author_name TEXT,
    summary_html TEXT NOT NULL DEFAULT '',
    categories TEXT NOT NULL DEFAULT '[]',
    published_at BIGINT,
    updated_at BIGINT,
    harvested_at BIGINT NOT NULL,
    changed_at BIGINT NOT NULL,
    -- SHA-256 of the stored fields, to tell a changed item from an unchanged one.
    content_hash TEXT NOT NULL,
    UNIQUE (feed_id, item_key)
);
CREATE INDEX links_author ON links(author_id);

-- Which Tasks a Link answers. source: 'hashtag' (found by the harvester) or 'manual'
-- (an instructor's choice). tied = 0 records a manual untie, which later harvests respect.
CREATE TABLE link_tasks (
    link_id INTEGER NOT NULL REFERENCES links(id) ON DELETE CASCADE,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE RESTRICT,
    source TEXT NOT NULL,
    tied INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (link_id, task_id)
);
CREATE INDEX link_tasks_task ON link_tasks(task_id, tied);
