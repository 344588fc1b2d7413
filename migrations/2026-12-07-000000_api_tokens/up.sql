-- Personal access tokens for the JSON API under /api/v1. Only the SHA-256 of a token is kept:
-- the token itself is shown once, when it is made.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    instructor_id BIGINT NOT NULL REFERENCES instructors (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    -- Comma-separated scope words (`read`, `awards:write`, `reader:write`, `webhooks:write`).
    scopes TEXT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    last_used_addr TEXT,
    revoked_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_tokens_instructor ON api_tokens (instructor_id);

-- The first answer to a write sent with an Idempotency-Key, so that a retry gets it again. The
-- primary key makes a second award under one key impossible, whatever the concurrency.
CREATE TABLE api_idempotency (
    token_id BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);
