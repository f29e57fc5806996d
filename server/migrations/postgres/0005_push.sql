-- Push. A device's one target (a Web Push subscription, an APNs or FCM
-- token) is sealed with AES-256-GCM under `push.target_key`, a key held in
-- configuration and never here: a copy of this database alone does not say
-- which phone, which platform or which push service. Deleting or revoking
-- the device deletes its target.
CREATE TABLE push_targets (
    device_id     TEXT    PRIMARY KEY NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    sealed        BYTEA   NOT NULL,
    registered_at BIGINT  NOT NULL,
    last_wake_at  BIGINT,
    dead_at       BIGINT,
    dead_reason   TEXT
);

-- Wakes waiting to go out: at most one per device, so a burst of messages
-- becomes one wake (`coalesced` counts the rest, for the metrics). A node
-- claims a due wake until `claimed_until`; one that crashed mid-send leaves
-- it to be claimed again after that. `requeued` is 1 when something new
-- came for the device while its wake was being sent: the row then stays for
-- the next interval instead of being deleted.
CREATE TABLE push_wakes (
    device_id     TEXT    PRIMARY KEY NOT NULL REFERENCES push_targets (device_id) ON DELETE CASCADE,
    due_at        BIGINT  NOT NULL,
    attempts      BIGINT  NOT NULL,
    coalesced     BIGINT  NOT NULL,
    requeued      BIGINT  NOT NULL,
    claimed_until BIGINT
);
CREATE INDEX push_wakes_by_due ON push_wakes (due_at);

-- Devices with a live socket, per node, so that no node wakes them. A node
-- renews its rows every minute; the rows of a node that died expire.
CREATE TABLE push_presence (
    device_id  TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    node       TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (device_id, node)
);
CREATE INDEX push_presence_by_node ON push_presence (node);
