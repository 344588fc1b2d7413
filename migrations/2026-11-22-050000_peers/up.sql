-- Peer institutions sharing the chain: their URL and public key (the trust list), and the
-- state of our contact with them.
CREATE TABLE peers (
    id INTEGER PRIMARY KEY NOT NULL,
    url TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    added_at BIGINT NOT NULL,
    last_contact_at BIGINT,
    last_height BIGINT,
    records_relayed BIGINT NOT NULL DEFAULT 0,
    blocks_received BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    next_try_at BIGINT NOT NULL DEFAULT 0
);
