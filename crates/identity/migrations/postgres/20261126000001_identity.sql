CREATE TABLE users (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at     TIMESTAMPTZ NOT NULL
);

-- Token signing keys, shared by every replica. `generation` is unique so that two replicas
-- rotating at once cannot both add a key: the second insert of a generation does nothing.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL UNIQUE,
    private_key    BYTEA NOT NULL,   -- PKCS#8 DER
    public_key     BYTEA NOT NULL,   -- the raw 32-byte Ed25519 key
    created_at     TIMESTAMPTZ NOT NULL,   -- published in the JWKS from here
    activated_at   TIMESTAMPTZ NOT NULL,   -- signs from here
    retired_at     TIMESTAMPTZ             -- signs no more from here
);

-- Refresh tokens, by the SHA-256 of the token: the token itself is never stored. Every token
-- descending from one login shares a family, revoked whole when a used token comes back.
CREATE TABLE refresh_tokens (
    token_hash     BYTEA PRIMARY KEY,
    family_id      UUID NOT NULL,
    user_id        UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at      TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    used_at        TIMESTAMPTZ,
    revoked_at     TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
