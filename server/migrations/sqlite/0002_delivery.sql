-- The delivery service: KeyPackages, circles, rosters, the ordered log, and
-- Welcomes waiting for their devices. Only ciphertext and the metadata the
-- design allows the server to see.

CREATE TABLE key_packages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    hash_ref    BLOB    NOT NULL UNIQUE,
    data        BLOB    NOT NULL,
    last_resort INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX key_packages_by_device ON key_packages (device_id, last_resort, id);
CREATE UNIQUE INDEX key_packages_one_last_resort ON key_packages (device_id) WHERE last_resort = 1;
CREATE INDEX key_packages_by_expiry ON key_packages (expires_at);

CREATE TABLE circles (
    id             BLOB    PRIMARY KEY NOT NULL,
    epoch          INTEGER NOT NULL,
    last_seq       INTEGER NOT NULL,
    max_members    INTEGER NOT NULL,
    retention_secs INTEGER NOT NULL,
    group_info     BLOB,
    created_at     INTEGER NOT NULL
) STRICT;

-- role: 'facilitator' or 'member'. joined_seq: the device reads only after it.
-- acked_seq: what the device has acknowledged.
CREATE TABLE roster (
    circle_id  BLOB    NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL,
    joined_seq INTEGER NOT NULL,
    acked_seq  INTEGER NOT NULL,
    PRIMARY KEY (circle_id, device_id)
) STRICT;
CREATE INDEX roster_by_device ON roster (device_id);

-- kind: 0 application message, 1 commit.
CREATE TABLE log_entries (
    circle_id  BLOB    NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    kind       INTEGER NOT NULL,
    sender_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    message_id TEXT,
    digest     BLOB,
    ciphertext BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (circle_id, seq)
) STRICT;
CREATE UNIQUE INDEX log_entries_by_message_id ON log_entries (circle_id, sender_id, message_id)
    WHERE message_id IS NOT NULL;
CREATE INDEX log_entries_by_age ON log_entries (created_at);
CREATE INDEX log_entries_by_sender ON log_entries (sender_id);

CREATE TABLE welcomes (
    id         TEXT    PRIMARY KEY NOT NULL,
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    circle_id  BLOB    NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX welcomes_by_device ON welcomes (device_id, created_at);
CREATE INDEX welcomes_by_circle ON welcomes (circle_id);

-- Invites: the token is stored only as a hash.
CREATE TABLE invites (
    id         TEXT    PRIMARY KEY NOT NULL,
    circle_id  BLOB    NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    token_hash BLOB    NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX invites_by_circle ON invites (circle_id);
CREATE INDEX invites_by_expiry ON invites (expires_at);

-- A redeemed invite waiting for the facilitator. device_ids: the requester's
-- account's devices, space-separated. note: opaque bytes the server cannot read.
CREATE TABLE join_requests (
    id           TEXT    PRIMARY KEY NOT NULL,
    circle_id    BLOB    NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    requester_id TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    device_ids   TEXT    NOT NULL,
    note         BLOB,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX join_requests_by_circle ON join_requests (circle_id, created_at);
CREATE INDEX join_requests_by_requester ON join_requests (requester_id);
