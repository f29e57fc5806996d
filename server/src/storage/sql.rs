//! SQL text both databases share. Parameters are `$N`, which PostgreSQL and
//! SQLite (through sqlx) both bind by number; types are integers, text and
//! bytes only, so one statement reads the same on either side.

pub const SELECT_SIGNING_KEYS: &str =
    "SELECT kid, private_key, created_at FROM signing_keys ORDER BY created_at, kid";
pub const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys (kid, private_key, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING";

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
pub const DELETE_DEVICE_SESSIONS: &str = "DELETE FROM sessions WHERE device_id = $1";
pub const DELETE_ACCOUNT: &str = "DELETE FROM accounts WHERE id = $1";

pub const INSERT_SESSION: &str =
    "INSERT INTO sessions (id, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
pub const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)";
pub const SELECT_REFRESH_TOKEN: &str = "SELECT r.session_id, r.expires_at, r.used_at, \
     s.device_id, d.revoked_at FROM refresh_tokens r \
     JOIN sessions s ON s.id = r.session_id JOIN devices d ON d.id = s.device_id \
     WHERE r.token_hash = $1";
pub const SPEND_REFRESH_TOKEN: &str =
    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL";
pub const EXTEND_SESSION: &str =
    "UPDATE sessions SET expires_at = $2 WHERE id = $1 AND expires_at < $2";
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
pub const SELECT_LIVE_SESSION: &str = "SELECT d.account_id FROM sessions s \
     JOIN devices d ON d.id = s.device_id \
     WHERE s.id = $1 AND s.device_id = $2 AND d.revoked_at IS NULL";

pub const PURGE_CHALLENGES: &str = "DELETE FROM challenges WHERE expires_at < $1";
pub const PURGE_LINK_TOKENS: &str = "DELETE FROM link_tokens WHERE expires_at < $1";
pub const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at < $1";
pub const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at < $1";
