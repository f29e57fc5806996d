-- Accounts, devices, sessions and the server's own signing keys.
-- Timestamps are unix seconds (BIGINT); ids are lowercase hyphenated UUID text;
-- tokens and challenges are stored only as SHA-256 hashes.

CREATE TABLE accounts (
    id         TEXT    PRIMARY KEY NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE devices (
    id         TEXT    PRIMARY KEY NOT NULL,
    account_id TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    public_key BYTEA   NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX devices_by_account ON devices (account_id);

-- One row per login: every refresh token descended from that login shares it.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    token_hash BYTEA   PRIMARY KEY NOT NULL,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE challenges (
    challenge_hash BYTEA   PRIMARY KEY NOT NULL,
    expires_at     BIGINT  NOT NULL
);
CREATE INDEX challenges_by_expiry ON challenges (expires_at);

CREATE TABLE link_tokens (
    token_hash BYTEA   PRIMARY KEY NOT NULL,
    account_id TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX link_tokens_by_account ON link_tokens (account_id);
CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY NOT NULL,
    private_key BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL
);
