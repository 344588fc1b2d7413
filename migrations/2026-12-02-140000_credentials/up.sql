-- Each award's Open Badges 3.0 credential, signed once when awarded. Its row id is its index
-- in the status lists, never reused; `revoked` is its bit there.
CREATE TABLE credentials (
    status_index INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id TEXT NOT NULL UNIQUE,
    credential_json TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    created_at BIGINT NOT NULL
);

-- Every key credentials were signed with (multibase, `z6Mk…`); the unretired one signs.
-- Retired keys stay in the DID document so that older credentials keep verifying. The secret
-- of a key made by `cairn identity rotate` is in `key_file`, a file in the data dir beside the
-- database; NULL is the institution's own key (`institution.key`).
CREATE TABLE credential_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    public_key TEXT NOT NULL UNIQUE,
    key_file TEXT,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TRIGGER doc_generation_credentials_update AFTER UPDATE ON credentials BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_credentials_delete AFTER DELETE ON credentials BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_credential_keys_insert AFTER INSERT ON credential_keys BEGIN UPDATE doc_generation SET n = n + 1; END;
CREATE TRIGGER doc_generation_credential_keys_update AFTER UPDATE ON credential_keys BEGIN UPDATE doc_generation SET n = n + 1; END;
