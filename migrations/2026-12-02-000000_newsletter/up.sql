-- The course newsletter. Per course: its time zone, the instructor's note for the next issue,
-- a day to skip and whether included posts get a Webmention.
CREATE TABLE newsletter_courses (
    course_id INTEGER PRIMARY KEY NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    note TEXT NOT NULL DEFAULT '',
    skip_date TEXT,
    webmentions BOOLEAN NOT NULL DEFAULT 1,
    updated_at BIGINT NOT NULL
);

-- Readers of a course's newsletter, with double opt-in. status: pending, confirmed,
-- unsubscribed, bounced. Only the hash of the emailed confirmation token is kept.
CREATE TABLE newsletter_subscribers (
    id INTEGER PRIMARY KEY NOT NULL,
    course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'pending',
    confirm_token_hash TEXT,
    confirm_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    updated_at BIGINT NOT NULL,
    UNIQUE (course_id, email)
);
CREATE UNIQUE INDEX newsletter_subscribers_confirm ON newsletter_subscribers(confirm_token_hash);
CREATE INDEX newsletter_subscribers_status ON newsletter_subscribers(course_id, status);

-- One issue per course and local date. status: sent (built and queued), empty (nothing new:
-- nothing sent), skipped (the instructor skipped the day). content is the issue as JSON,
-- rendered the same way for the mail, the preview and the archive page.
CREATE TABLE newsletter_issues (
    id INTEGER PRIMARY KEY NOT NULL,
    course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    date TEXT NOT NULL,
    status TEXT NOT NULL,
    since BIGINT NOT NULL,
    until BIGINT NOT NULL,
    content TEXT NOT NULL,
    posts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (course_id, date)
);

-- One message per subscriber per issue: the unique key is what makes a resumed send skip
-- those already made. status: queued, sent, failed (refused for good: a bounce), gave_up.
CREATE TABLE newsletter_deliveries (
    id INTEGER PRIMARY KEY NOT NULL,
    issue_id INTEGER NOT NULL REFERENCES newsletter_issues(id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES newsletter_subscribers(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (issue_id, subscriber_id)
);
CREATE INDEX newsletter_deliveries_due ON newsletter_deliveries(status, next_attempt_at);

-- The secret the unsubscribe links are derived from (one row).
CREATE TABLE newsletter_secret (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    secret TEXT NOT NULL
);

-- The outbox also carries the newsletter's Webmentions (from an issue's archive page to each
-- post it included): award_id becomes optional and newsletter_issue_id names the issue; the
-- unique index sends each post one Webmention per issue. SQLite changes a column's NOT NULL
-- only by rebuilding the table.
CREATE TABLE outbox_rebuilt (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    award_id INTEGER REFERENCES awards(id) ON DELETE RESTRICT,
    source TEXT,
    target TEXT,
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    endpoint TEXT,
    location TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    newsletter_issue_id INTEGER REFERENCES newsletter_issues(id) ON DELETE CASCADE,
    CHECK (award_id IS NOT NULL OR newsletter_issue_id IS NOT NULL)
);
INSERT INTO outbox_rebuilt (id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error,
                            endpoint, location, created_at, updated_at)
    SELECT id, kind, award_id, source, target, status, attempts, next_attempt_at, last_error, endpoint, location,
           created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
CREATE INDEX outbox_award ON outbox(award_id);
CREATE UNIQUE INDEX outbox_newsletter ON outbox(newsletter_issue_id, target) WHERE newsletter_issue_id IS NOT NULL;
