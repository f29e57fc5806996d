-- Presence a node can vouch for. A node renews its row here every third of
-- `push.presence_ttl_secs`; a device's presence counts only while the row of
-- the node holding its socket is alive, so the sockets of a node that was
-- killed or lost its database stop counting within that time, and a restart
-- (a new random node id) never inherits them. Presence rows themselves carry
-- no time: they are written when a socket opens or closes, in batches, not
-- renewed one by one.
CREATE TABLE push_nodes (
    node        TEXT    PRIMARY KEY NOT NULL,
    alive_until INTEGER NOT NULL
) STRICT;
DELETE FROM push_presence;
ALTER TABLE push_presence DROP COLUMN expires_at;

-- A wake that fell due while its device looked connected is held (`held`
-- 1, its `due_at` moved to when the node holding the socket must have
-- renewed its life), then checked again: dropped if that node (or another)
-- still vouches for a socket, sent if not. It is never dropped on a node's
-- word alone.
ALTER TABLE push_wakes ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
