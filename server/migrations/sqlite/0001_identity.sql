-- Accounts, devices, sessions and the server's own signing keys.
-- Timestamps are unix seconds (INTEGER); ids are lowercase hyphenated UUID text;
-- tokens and challenges are stored only as SHA-256 hashes.

CREATE TABLE accounts (
    id         TEXT    PRIMARY KEY NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    id         TEXT    PRIMARY KEY NOT NULL,
    account_id TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    public_key BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX devices_by_account ON devices (account_id);

-- One row per login: every refresh token descended from that login shares it.
CREATE TABLE sessions (
    id         TEXT    PRIMARY KEY NOT NULL,
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_device ON sessions (device_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE refresh_tokens (
    token_hash BLOB    PRIMARY KEY NOT NULL,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE challenges (
    challenge_hash BLOB    PRIMARY KEY NOT NULL,
    expires_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX challenges_by_expiry ON challenges (expires_at);

CREATE TABLE link_tokens (
    token_hash BLOB    PRIMARY KEY NOT NULL,
    account_id TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX link_tokens_by_account ON link_tokens (account_id);
CREATE INDEX link_tokens_by_expiry ON link_tokens (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY NOT NULL,
    private_key BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
