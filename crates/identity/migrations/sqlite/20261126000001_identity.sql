CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at     TEXT NOT NULL
);

-- Token signing keys, shared by every replica. `generation` is unique so that two replicas
-- rotating at once cannot both add a key: the second insert of a generation does nothing.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    generation     INTEGER NOT NULL UNIQUE,
    private_key    BLOB NOT NULL,   -- PKCS#8 DER
    public_key     BLOB NOT NULL,   -- the raw 32-byte Ed25519 key
    created_at     TEXT NOT NULL,   -- published in the JWKS from here
    activated_at   TEXT NOT NULL,   -- signs from here
    retired_at     TEXT             -- signs no more from here
);

-- Refresh tokens, by the SHA-256 of the token: the token itself is never stored. Every token
-- descending from one login shares a family, revoked whole when a used token comes back.
CREATE TABLE refresh_tokens (
    token_hash     BLOB PRIMARY KEY,
    family_id      BLOB NOT NULL,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at      TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    used_at        TEXT,
    revoked_at     TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
