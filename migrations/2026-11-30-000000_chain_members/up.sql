-- Members of the chain: each peer's base URL (from its identity when it was trusted) binds the
-- records its key signs; refusals of branches that would remove final blocks are counted
-- against the peer whose key mined them.
ALTER TABLE peers ADD COLUMN base_url TEXT NOT NULL DEFAULT '';
UPDATE peers SET base_url = url;
ALTER TABLE peers ADD COLUMN finality_refusals BIGINT NOT NULL DEFAULT 0;
ALTER TABLE peers ADD COLUMN last_refusal TEXT;
ALTER TABLE peers ADD COLUMN last_refusal_at BIGINT;

-- Pending records each peer has already answered for, so each is relayed once.
CREATE TABLE peer_relays (
    peer_id BIGINT NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
    record_id TEXT NOT NULL,
    PRIMARY KEY (peer_id, record_id)
) WITHOUT ROWID;
