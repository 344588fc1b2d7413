-- Facts about this instance's chain (network parameters, fixed once set).
CREATE TABLE chain_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Signed records (cairn-chain canonical bytes). block_hash NULL = pending (in the pool);
-- otherwise the main-chain block holding it.
CREATE TABLE chain_records (
    id INTEGER PRIMARY KEY NOT NULL,
    record_id TEXT NOT NULL UNIQUE,
    bytes BLOB NOT NULL,
    award_id INTEGER REFERENCES awards(id) ON DELETE RESTRICT,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    block_hash TEXT
);
CREATE INDEX chain_records_pending ON chain_records(id) WHERE block_hash IS NULL;
CREATE INDEX chain_records_award ON chain_records(award_id);
CREATE INDEX chain_records_block ON chain_records(block_hash);

-- Every valid block known (main chain and side branches), as canonical bytes.
CREATE TABLE blocks (
    hash TEXT PRIMARY KEY NOT NULL,
    height BIGINT NOT NULL,
    prev TEXT NOT NULL,
    bytes BLOB NOT NULL,
    timestamp BIGINT NOT NULL,
    miner TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    on_main BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX blocks_height ON blocks(height);
