//! SQL text both databases share. Parameters are `$N`, which PostgreSQL and
//! SQLite (through sqlx) both bind by number; types are integers, text and
//! bytes only, so one statement reads the same on either side.

pub const SELECT_SIGNING_KEYS: &str =
    "SELECT kid, private_key, created_at FROM signing_keys ORDER BY created_at, kid";
pub const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys (kid, private_key, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING";

pub const REWRAP_SIGNING_KEY: &str = "UPDATE signing_keys SET private_key = $2 WHERE kid = $1";

pub const INSERT_CHALLENGE: &str =
    "INSERT INTO challenges (challenge_hash, expires_at) VALUES ($1, $2)";
pub const TAKE_CHALLENGE: &str =
    "DELETE FROM challenges WHERE challenge_hash = $1 RETURNING expires_at";

pub const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, created_at) VALUES ($1, $2)";
pub const INSERT_DEVICE: &str = "INSERT INTO devices (id, account_id, public_key, created_at) \
     VALUES ($1, $2, $3, $4)";
pub const TAKE_LINK_TOKEN: &str =
    "DELETE FROM link_tokens WHERE token_hash = $1 RETURNING account_id, expires_at";
pub const INSERT_LINK_TOKEN: &str =
    "INSERT INTO link_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)";

pub const SELECT_DEVICE: &str =
    "SELECT id, account_id, public_key, created_at, revoked_at FROM devices WHERE id = $1";
pub const SELECT_ACCOUNT_DEVICES: &str = "SELECT id, account_id, public_key, created_at, revoked_at FROM devices \
     WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id";
pub const REVOKE_DEVICE: &str = "UPDATE devices SET revoked_at = $3 \
     WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL";
pub const DELETE_DEVICE_LOGINS: &str = "DELETE FROM logins WHERE device_id = $1";
pub const DELETE_DEVICE_ROSTER: &str = "DELETE FROM roster WHERE device_id = $1";
pub const DELETE_DEVICE_WELCOMES: &str = "DELETE FROM welcomes WHERE device_id = $1";
pub const DELETE_DEVICE_KEY_PACKAGES: &str = "DELETE FROM key_packages WHERE device_id = $1";
pub const DELETE_ACCOUNT: &str = "DELETE FROM accounts WHERE id = $1";

pub const INSERT_LOGIN: &str =
    "INSERT INTO logins (id, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
pub const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_hash, login_id, expires_at) VALUES ($1, $2, $3)";
pub const SELECT_REFRESH_TOKEN: &str = "SELECT r.login_id, r.expires_at, r.used_at, \
     s.device_id, d.revoked_at FROM refresh_tokens r \
     JOIN logins s ON s.id = r.login_id JOIN devices d ON d.id = s.device_id \
     WHERE r.token_hash = $1";
pub const SPEND_REFRESH_TOKEN: &str =
    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL";
pub const EXTEND_LOGIN: &str =
    "UPDATE logins SET expires_at = $2 WHERE id = $1 AND expires_at < $2";
pub const DELETE_LOGIN: &str = "DELETE FROM logins WHERE id = $1";
pub const SELECT_LIVE_LOGIN: &str = "SELECT d.account_id FROM logins s \
     JOIN devices d ON d.id = s.device_id \
     WHERE s.id = $1 AND s.device_id = $2 AND d.revoked_at IS NULL";

pub const PURGE_CHALLENGES: &str = "DELETE FROM challenges WHERE expires_at < $1";
pub const PURGE_LINK_TOKENS: &str = "DELETE FROM link_tokens WHERE expires_at < $1";
pub const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at < $1";
pub const PURGE_LOGINS: &str = "DELETE FROM logins WHERE expires_at < $1";

pub const INSERT_KEY_PACKAGE: &str = "INSERT INTO key_packages \
     (device_id, hash_ref, data, last_resort, expires_at, created_at, cipher_suite) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash_ref) DO NOTHING";
pub const COUNT_KEY_PACKAGES: &str = "SELECT COUNT(*) FROM key_packages \
     WHERE device_id = $1 AND last_resort = $2 AND expires_at > $3";
pub const DELETE_LAST_RESORT: &str =
    "DELETE FROM key_packages WHERE device_id = $1 AND cipher_suite = $2 AND last_resort = 1";
pub const SELECT_LAST_RESORT: &str = "SELECT data FROM key_packages \
     WHERE device_id = $1 AND cipher_suite = $3 AND last_resort = 1 AND expires_at > $2";
/// Whether device $1 may claim device $2's KeyPackages: $2 belongs to $1's
/// account ($3), or a pending join request of a circle $1 facilitates names $2.
pub const MAY_CLAIM: &str = "SELECT EXISTS (SELECT 1 FROM devices WHERE id = $2 AND account_id = $3) \
     OR EXISTS (SELECT 1 FROM join_requests j JOIN roster r ON r.circle_id = j.circle_id \
     WHERE r.device_id = $1 AND r.role = 'facilitator' \
     AND (' ' || j.device_ids || ' ') LIKE ('% ' || $2 || ' %'))";
pub const PURGE_KEY_PACKAGES: &str = "DELETE FROM key_packages WHERE expires_at <= $1";

pub const INSERT_CIRCLE: &str = "INSERT INTO circles \
     (id, epoch, last_seq, max_members, retention_secs, group_info, created_at) \
     VALUES ($1, 0, 0, $2, $3, $4, $5)";
pub const INSERT_ROSTER: &str = "INSERT INTO roster \
     (circle_id, device_id, role, joined_seq, acked_seq) VALUES ($1, $2, $3, $4, $4)";
pub const DELETE_ROSTER: &str = "DELETE FROM roster WHERE circle_id = $1 AND device_id = $2";
pub const SELECT_CIRCLE: &str = "SELECT id, epoch, last_seq, max_members, retention_secs \
     FROM circles WHERE id = $1";
pub const SELECT_DEVICE_CIRCLES: &str = "SELECT c.id, c.epoch, c.last_seq, c.max_members, \
     c.retention_secs FROM circles c JOIN roster r ON r.circle_id = c.id \
     WHERE r.device_id = $1 ORDER BY c.created_at, c.id";
pub const SELECT_ROSTER: &str = "SELECT device_id, role, joined_seq, acked_seq FROM roster \
     WHERE circle_id = $1 ORDER BY joined_seq, device_id";
pub const SELECT_MEMBER: &str = "SELECT device_id, role, joined_seq, acked_seq FROM roster \
     WHERE circle_id = $1 AND device_id = $2";
pub const SELECT_ROSTER_DEVICE: &str =
    "SELECT device_id FROM roster WHERE circle_id = $1 AND device_id = $2";
pub const SELECT_GROUP_INFO: &str = "SELECT epoch, group_info FROM circles WHERE id = $1";
pub const SELECT_EPOCH: &str = "SELECT epoch FROM circles WHERE id = $1";

pub const ADVANCE_EPOCH: &str = "UPDATE circles SET epoch = epoch + 1, last_seq = last_seq + 1, \
     group_info = COALESCE($3, group_info) WHERE id = $1 AND epoch = $2 \
     RETURNING epoch, last_seq";
pub const INSERT_LOG_ENTRY: &str = "INSERT INTO log_entries \
     (circle_id, seq, epoch, kind, sender_id, message_id, digest, ciphertext, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const SELECT_LOG: &str = "SELECT seq, epoch, kind, sender_id, ciphertext, created_at \
     FROM log_entries WHERE circle_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
/// A member's page of the log: only entries after the seq that added the
/// device, and none at all unless it is on the roster when the statement
/// reads (the scalar subquery is NULL then, and `seq > NULL` is never true).
pub const SELECT_MEMBER_LOG: &str = "SELECT seq, epoch, kind, sender_id, ciphertext, created_at \
     FROM log_entries WHERE circle_id = $1 AND seq > $2 AND seq > \
     (SELECT joined_seq FROM roster WHERE circle_id = $1 AND device_id = $3) \
     ORDER BY seq LIMIT $4";
pub const SELECT_LAST_SEQ: &str = "SELECT last_seq FROM circles WHERE id = $1";
pub const RAISE_ACK: &str = "UPDATE roster SET acked_seq = $3 \
     WHERE circle_id = $1 AND device_id = $2 AND acked_seq < $3";
pub const DELETE_ACKNOWLEDGED: &str = "DELETE FROM log_entries WHERE circle_id = $1 \
     AND seq <= (SELECT MIN(acked_seq) FROM roster WHERE circle_id = $1)";
pub const PURGE_LOG: &str = "DELETE FROM log_entries WHERE created_at < $1 - \
     (SELECT retention_secs FROM circles WHERE circles.id = log_entries.circle_id)";

pub const INSERT_WELCOME: &str = "INSERT INTO welcomes \
     (id, device_id, circle_id, seq, epoch, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const SELECT_WELCOMES: &str = "SELECT id, circle_id, seq, epoch, data FROM welcomes \
     WHERE device_id = $1 ORDER BY created_at, seq";
pub const DELETE_WELCOME: &str = "DELETE FROM welcomes WHERE id = $1 AND device_id = $2";
pub const PURGE_WELCOMES: &str = "DELETE FROM welcomes WHERE created_at < $1 - \
     (SELECT retention_secs FROM circles WHERE circles.id = welcomes.circle_id)";

pub const INSERT_INVITE: &str = "INSERT INTO invites \
     (id, circle_id, token_hash, expires_at, max_uses, uses, created_at) \
     VALUES ($1, $2, $3, $4, $5, 0, $6)";
pub const SELECT_INVITES: &str = "SELECT id, expires_at, max_uses, uses FROM invites \
     WHERE circle_id = $1 ORDER BY created_at, id";
pub const DELETE_INVITE: &str = "DELETE FROM invites WHERE id = $1 AND circle_id = $2";
pub const USE_INVITE: &str = "UPDATE invites SET uses = uses + 1 \
     WHERE token_hash = $1 AND uses < max_uses AND expires_at > $2 RETURNING circle_id";
pub const PURGE_INVITES: &str = "DELETE FROM invites WHERE expires_at <= $1 OR uses >= max_uses";
pub const INSERT_JOIN_REQUEST: &str = "INSERT INTO join_requests \
     (id, circle_id, requester_id, device_ids, note, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub const SELECT_JOIN_REQUESTS: &str = "SELECT id, device_ids, note, created_at FROM join_requests \
     WHERE circle_id = $1 ORDER BY created_at, id";
pub const SELECT_JOIN_REQUEST: &str = "SELECT id, device_ids, note, created_at FROM join_requests \
     WHERE circle_id = $1 AND id = $2";
pub const DELETE_JOIN_REQUEST: &str = "DELETE FROM join_requests WHERE circle_id = $1 AND id = $2";

pub const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (circle_id, version, data, updated_at) \
     VALUES ($1, 1, $2, $3) ON CONFLICT (circle_id) DO NOTHING";
pub const REPLACE_SNAPSHOT: &str = "UPDATE snapshots SET version = version + 1, data = $3, \
     updated_at = $4 WHERE circle_id = $1 AND version = $2 RETURNING version";
pub const SELECT_SNAPSHOT: &str =
    "SELECT version, data, updated_at FROM snapshots WHERE circle_id = $1";
pub const SELECT_SNAPSHOT_VERSION: &str = "SELECT version FROM snapshots WHERE circle_id = $1";

pub const UPSERT_PUSH_TARGET: &str = "INSERT INTO push_targets \
     (device_id, sealed, registered_at, last_wake_at, dead_at, dead_reason) \
     VALUES ($1, $2, $3, NULL, NULL, NULL) ON CONFLICT (device_id) DO UPDATE SET \
     sealed = excluded.sealed, registered_at = excluded.registered_at, \
     last_wake_at = NULL, dead_at = NULL, dead_reason = NULL";
pub const SELECT_PUSH_TARGET: &str = "SELECT sealed, registered_at, last_wake_at, dead_at, \
     dead_reason FROM push_targets WHERE device_id = $1";
pub const DELETE_PUSH_TARGET: &str = "DELETE FROM push_targets WHERE device_id = $1";
pub const SELECT_ROSTER_TO_WAKE: &str = "SELECT t.device_id FROM roster r \
     JOIN push_targets t ON t.device_id = r.device_id \
     WHERE r.circle_id = $1 AND t.dead_at IS NULL";
pub const SELECT_FACILITATORS_TO_WAKE: &str = "SELECT t.device_id FROM roster r \
     JOIN push_targets t ON t.device_id = r.device_id \
     WHERE r.circle_id = $1 AND r.role = 'facilitator' AND t.dead_at IS NULL";
pub const SELECT_DEVICE_TO_WAKE: &str = "SELECT t.device_id FROM push_targets t \
     WHERE t.device_id = $1 AND t.dead_at IS NULL";
pub const QUEUE_WAKE: &str = "INSERT INTO push_wakes \
     (device_id, due_at, attempts, coalesced, requeued, claimed_until) \
     SELECT $1, $2, 0, 0, 0, NULL WHERE EXISTS \
     (SELECT 1 FROM push_targets WHERE device_id = $1 AND dead_at IS NULL) \
     ON CONFLICT (device_id) DO UPDATE SET coalesced = push_wakes.coalesced + 1, \
     requeued = CASE WHEN push_wakes.claimed_until IS NULL THEN 0 ELSE 1 END \
     RETURNING coalesced";
/// Held wakes, due again, of devices a living node still vouches for: the
/// node renewed its life since the hold, with the socket open throughout.
pub const DROP_WAKES_OF_PRESENT: &str = "DELETE FROM push_wakes WHERE held = 1 \
     AND due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) AND device_id IN \
     (SELECT p.device_id FROM push_presence p JOIN push_nodes n ON n.node = p.node \
     WHERE n.alive_until > $1)";
/// Due wakes of devices that look connected are held (once): due again
/// when the nodes vouching for them must have renewed their lives.
pub const HOLD_WAKES_OF_PRESENT: &str = "UPDATE push_wakes SET held = 1, \
     due_at = (SELECT MAX(n.alive_until) FROM push_presence p JOIN push_nodes n \
     ON n.node = p.node WHERE p.device_id = push_wakes.device_id AND n.alive_until > $1) \
     WHERE held = 0 AND due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
     AND device_id IN (SELECT p.device_id FROM push_presence p JOIN push_nodes n \
     ON n.node = p.node WHERE n.alive_until > $1)";
pub const SELECT_SEALED_TARGET: &str =
    "SELECT sealed FROM push_targets WHERE device_id = $1 AND dead_at IS NULL";
pub const FINISH_WAKE: &str = "DELETE FROM push_wakes WHERE device_id = $1 AND requeued = 0";
pub const REQUEUE_WAKE: &str = "UPDATE push_wakes SET due_at = $2, attempts = 0, \
     requeued = 0, claimed_until = NULL, held = 0 WHERE device_id = $1";
pub const RECORD_WAKE: &str = "UPDATE push_targets SET last_wake_at = $2 WHERE device_id = $1";
pub const RETRY_WAKE: &str = "UPDATE push_wakes SET due_at = $2, claimed_until = NULL, \
     held = 0 WHERE device_id = $1";
pub const DROP_WAKE: &str = "DELETE FROM push_wakes WHERE device_id = $1";
pub const KILL_PUSH_TARGET: &str = "UPDATE push_targets SET dead_at = $2, dead_reason = $3 \
     WHERE device_id = $1 AND dead_at IS NULL";
pub const NEXT_WAKE_DUE: &str = "SELECT MIN(CASE WHEN claimed_until IS NULL THEN due_at \
     WHEN claimed_until > due_at THEN claimed_until ELSE due_at END) FROM push_wakes";
pub const RANDOM_LIVE_TARGET: &str =
    "SELECT device_id FROM push_targets WHERE dead_at IS NULL ORDER BY RANDOM() LIMIT 1";
/// A device that was deleted meanwhile has no presence (and no error).
pub const INSERT_PRESENCE: &str = "INSERT INTO push_presence (device_id, node) \
     SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) \
     ON CONFLICT (device_id, node) DO NOTHING";
pub const DELETE_PRESENCE: &str = "DELETE FROM push_presence WHERE device_id = $1 AND node = $2";
pub const DELETE_NODE_PRESENCE: &str = "DELETE FROM push_presence WHERE node = $1";
pub const UPSERT_NODE: &str = "INSERT INTO push_nodes (node, alive_until) VALUES ($1, $2) \
     ON CONFLICT (node) DO UPDATE SET alive_until = excluded.alive_until";
/// Only a node still alive is extended: one that lapsed records its sockets
/// again.
pub const RENEW_NODE: &str =
    "UPDATE push_nodes SET alive_until = $3 WHERE node = $1 AND alive_until > $2";
pub const DELETE_NODE: &str = "DELETE FROM push_nodes WHERE node = $1";
pub const PURGE_DEAD_PRESENCE: &str = "DELETE FROM push_presence WHERE node NOT IN \
     (SELECT node FROM push_nodes WHERE alive_until > $1)";
pub const PURGE_DEAD_NODES: &str = "DELETE FROM push_nodes WHERE alive_until <= $1";
