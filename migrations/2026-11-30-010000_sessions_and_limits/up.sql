-- Instructor sessions live on the server: the cookie carries only a random id, kept here
-- as its SHA-256 so that a copy of the database does not hold usable cookies.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    instructor_id INTEGER NOT NULL REFERENCES instructors(id) ON DELETE CASCADE,
    -- The session's other values (CSRF token, one-time message), as a JSON object.
    state TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_instructor ON sessions(instructor_id);
CREATE INDEX sessions_last_seen ON sessions(last_seen_at);

-- Confirmation mails sent by /join, for the daily limit per address.
CREATE TABLE join_mails (
    id INTEGER PRIMARY KEY NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    sent_at BIGINT NOT NULL
);
CREATE INDEX join_mails_email ON join_mails(email, sent_at);

-- The name typed in an unconfirmed join: it reaches the learner only on confirmation.
ALTER TABLE feeds ADD COLUMN pending_name TEXT;

-- The client address that sent a received Webmention (for the per-client cap), and whether it
-- may be shown publicly: own_site (the source is on the learner's own site), pending (waiting
-- for an instructor), approved or rejected.
ALTER TABLE mentions ADD COLUMN client TEXT;
ALTER TABLE mentions ADD COLUMN moderation TEXT NOT NULL DEFAULT 'pending';
CREATE INDEX mentions_client ON mentions(client, status);
CREATE INDEX mentions_source ON mentions(source, status);
CREATE INDEX mentions_moderation ON mentions(moderation, status);
