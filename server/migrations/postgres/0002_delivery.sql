-- The delivery service: KeyPackages, circles, rosters, the ordered log, and
-- Welcomes waiting for their devices. Only ciphertext and the metadata the
-- design allows the server to see.

CREATE TABLE key_packages (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id   TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hash_ref    BYTEA   NOT NULL UNIQUE,
    data        BYTEA   NOT NULL,
    last_resort BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX key_packages_by_device ON key_packages (device_id, last_resort, id);
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (device_id) WHERE last_resort = 1;
CREATE INDEX key_packages_by_expiry ON key_packages (expires_at);

CREATE TABLE circles (
    id             BYTEA   PRIMARY KEY NOT NULL,
    epoch          BIGINT  NOT NULL,
    last_seq       BIGINT  NOT NULL,
    max_members    BIGINT  NOT NULL,
    retention_secs BIGINT  NOT NULL,
    group_info     BYTEA,
    created_at     BIGINT  NOT NULL
);

-- role: 'facilitator' or 'member'. joined_seq: the device reads only after it.
-- acked_seq: what the device has acknowledged.
CREATE TABLE roster (
    circle_id  BYTEA   NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    joined_seq BIGINT  NOT NULL,
    acked_seq  BIGINT  NOT NULL,
    PRIMARY KEY (circle_id, device_id)
);
CREATE INDEX roster_by_device ON roster (device_id);

-- kind: 0 application message, 1 commit.
CREATE TABLE log_entries (
    circle_id  BYTEA   NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    seq        BIGINT  NOT NULL,
    epoch      BIGINT  NOT NULL,
    kind       BIGINT  NOT NULL,
    sender_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    message_id TEXT,
    digest     BYTEA,
    ciphertext BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (circle_id, seq)
);
CREATE UNIQUE INDEX log_entries_by_message_id ON log_entries (circle_id, sender_id, message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX log_entries_by_age ON log_entries (created_at);
CREATE INDEX log_entries_by_sender ON log_entries (sender_id);

CREATE TABLE welcomes (
    id         TEXT    PRIMARY KEY NOT NULL,
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    circle_id  BYTEA   NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    seq        BIGINT  NOT NULL,
    epoch      BIGINT  NOT NULL,
    data       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX welcomes_by_device ON welcomes (device_id, created_at);
CREATE INDEX welcomes_by_circle ON welcomes (circle_id);

-- Invites: the token is stored only as a hash.
CREATE TABLE invites (
    id         TEXT    PRIMARY KEY NOT NULL,
    circle_id  BYTEA   NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    token_hash BYTEA   NOT NULL UNIQUE,
    expires_at BIGINT  NOT NULL,
    max_uses   BIGINT  NOT NULL,
    uses       BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX invites_by_circle ON invites (circle_id);
CREATE INDEX invites_by_expiry ON invites (expires_at);

-- A redeemed invite waiting for the facilitator. device_ids: the requester's
-- account's devices, space-separated. note: opaque bytes the server cannot read.
CREATE TABLE join_requests (
    id           TEXT    PRIMARY KEY NOT NULL,
    circle_id    BYTEA   NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    requester_id TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    device_ids   TEXT    NOT NULL,
    note         BYTEA,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX join_requests_by_circle ON join_requests (circle_id, created_at);
CREATE INDEX join_requests_by_requester ON join_requests (requester_id);
