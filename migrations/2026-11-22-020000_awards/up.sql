-- A BadgeClass may expire: awards then carry `expires` this many days after issue.
ALTER TABLE tasks ADD COLUMN expires_days INTEGER;

-- The instructor's reading state of a harvested post.
ALTER TABLE links ADD COLUMN dismissed BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN starred BOOLEAN NOT NULL DEFAULT 0;

-- An Open Badges 2.0 Assertion: one Task's badge awarded to one recipient.
CREATE TABLE awards (
    id INTEGER PRIMARY KEY NOT NULL,
    -- Random id used in the public URL (/assertions/{public_id}).
    public_id TEXT NOT NULL UNIQUE,
    task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE RESTRICT,
    link_id INTEGER REFERENCES links(id) ON DELETE RESTRICT,
    author_id INTEGER REFERENCES authors(id) ON DELETE RESTRICT,
    -- Private: used to notify the learner and to refuse a second award; never published.
    recipient_email TEXT NOT NULL COLLATE NOCASE,
    recipient_name TEXT,
    salt TEXT NOT NULL,
    -- "sha256$" + hex(sha256(email + salt))
    identity TEXT NOT NULL,
    evidence_url TEXT,
    narrative TEXT,
    issued_on BIGINT NOT NULL,
    expires BIGINT,
    revoked_at BIGINT,
    revocation_reason TEXT,
    awarded_by INTEGER REFERENCES instructors(id) ON DELETE SET NULL,
    -- The Assertion document as published, and the baked images.
    assertion_json TEXT NOT NULL,
    baked_svg BLOB NOT NULL,
    baked_png BLOB NOT NULL,
    UNIQUE (task_id, recipient_email)
);
CREATE INDEX awards_link ON awards(link_id);
CREATE INDEX awards_author ON awards(author_id);
CREATE INDEX awards_revoked ON awards(revoked_at) WHERE revoked_at IS NOT NULL;
