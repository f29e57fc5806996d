//! Storage: one interface ([`Storage`]), one implementation per database.
//!
//! [`sqlite::SqliteStorage`] is the embedded default; [`postgres::PgStorage`] is
//! for production and for several server nodes on one database. Both run the same
//! conformance suite (`tests/e2e/storage.rs`). Every method is one transaction:
//! a caller never sees half of an operation.
//!
//! Timestamps are unix seconds passed in by the caller, so the storage layer has
//! no clock of its own. Secrets arrive already hashed.

pub mod postgres;
mod shared;
mod sql;
pub mod sqlite;

use async_trait::async_trait;
use hearth_protocol::{AccountId, DeviceId};
use secrecy::SecretBox;
use std::sync::Arc;
use uuid::Uuid;

/// Which database a [`Storage`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files in the data directory.
    Sqlite,
    /// PostgreSQL via `DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// A short lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The public key is already registered to a device.
    #[error("this public key is already registered")]
    DeviceExists,
    /// The link token is unknown, used or expired.
    #[error("the link token is unknown, used or expired")]
    LinkTokenInvalid,
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not parse (for example an id column holding something
    /// that is not an id). Means the database was changed behind our back.
    #[error("corrupt stored value in {0}")]
    Corrupt(&'static str),
    /// The data directory for SQLite could not be created.
    #[error("cannot create the data directory: {0}")]
    DataDir(#[source] std::io::Error),
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A device about to be stored.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Its new random id.
    pub id: DeviceId,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub id: DeviceId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Its Ed25519 public key.
    pub public_key: Vec<u8>,
    /// Unix seconds when it registered.
    pub created_at: i64,
    /// Unix seconds when it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// One login: the family of refresh tokens descended from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub Uuid);

/// A refresh token about to be stored.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now spent and the new one replaces it.
    Rotated {
        /// The device the session belongs to.
        device_id: DeviceId,
        /// The session (unchanged by rotation).
        session_id: SessionId,
    },
    /// The token had already been rotated: the whole session is now revoked.
    Reused,
    /// Unknown, expired, or belongs to a revoked device.
    Invalid,
}

/// Who an access token speaks for, as far as the database still agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSession {
    /// The device.
    pub device_id: DeviceId,
    /// Its account.
    pub account_id: AccountId,
}

/// A JWT signing key as stored: the Ed25519 seed under its key id.
#[derive(Debug)]
pub struct SigningKeyRecord {
    /// The `kid` header value for tokens signed with this key.
    pub kid: String,
    /// The 32-byte Ed25519 seed.
    pub seed: SecretBox<[u8; 32]>,
    /// Unix seconds; the newest key signs.
    pub created_at: i64,
}

/// Rows removed by one sweep, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired challenges.
    pub challenges: u64,
    /// Expired link tokens.
    pub link_tokens: u64,
    /// Expired refresh tokens and sessions.
    pub sessions: u64,
}

/// The one storage interface. See the module documentation.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Closes the pools; in-flight queries finish first.
    async fn close(&self);

    /// All JWT signing keys, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;

    /// Stores a signing key unless one with that `kid` exists already.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()>;

    /// Remembers a challenge (by hash) until it expires.
    async fn insert_challenge(&self, hash: &[u8; 32], expires_at: i64) -> Result<()>;

    /// Consumes a challenge: true exactly once for an unexpired challenge.
    async fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<bool>;

    /// Creates a new account holding one device.
    async fn create_account(&self, account_id: AccountId, device: &NewDevice) -> Result<()>;

    /// Consumes a link token and adds the device to the token's account.
    async fn link_device(
        &self,
        link_token_hash: &[u8; 32],
        now: i64,
        device: &NewDevice,
    ) -> Result<AccountId>;

    /// Stores a one-time link token for an account.
    async fn insert_link_token(
        &self,
        hash: &[u8; 32],
        account_id: AccountId,
        expires_at: i64,
    ) -> Result<()>;

    /// A device by id, revoked or not.
    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>>;

    /// An account's devices that are not revoked, oldest first.
    async fn account_devices(&self, account_id: AccountId) -> Result<Vec<DeviceRecord>>;

    /// Revokes a device of the account and ends its sessions. False when the
    /// account has no such active device.
    async fn revoke_device(
        &self,
        account_id: AccountId,
        device_id: DeviceId,
        now: i64,
    ) -> Result<bool>;

    /// Deletes the account and every row it owns.
    async fn delete_account(&self, account_id: AccountId) -> Result<()>;

    /// Starts a session for a device with its first refresh token.
    async fn create_session(
        &self,
        session_id: SessionId,
        device_id: DeviceId,
        now: i64,
        token: &NewRefreshToken,
    ) -> Result<()>;

    /// Spends a refresh token and stores its successor, or revokes the session
    /// when the token was already spent. One transaction.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8; 32],
        next: &NewRefreshToken,
        now: i64,
    ) -> Result<RefreshOutcome>;

    /// Ends a session (log out): its refresh tokens and access tokens stop
    /// working. False when there was no such session.
    async fn end_session(&self, session_id: SessionId) -> Result<bool>;

    /// The device and account behind an access token, when the session still
    /// exists and the device is not revoked.
    async fn live_session(
        &self,
        session_id: SessionId,
        device_id: DeviceId,
    ) -> Result<Option<LiveSession>>;

    /// Removes everything expired.
    async fn purge_expired(&self, now: i64) -> Result<Purged>;
}

impl std::fmt::Debug for dyn Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.backend().as_str())
    }
}

/// Opens the configured database and applies its migrations: PostgreSQL when
/// `database_url` is given, otherwise SQLite in `data_dir`.
pub async fn connect(
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    max_connections: u32,
) -> Result<Arc<dyn Storage>> {
    Ok(match database_url {
        Some(url) => Arc::new(postgres::PgStorage::connect(url, max_connections).await?),
        None => Arc::new(sqlite::SqliteStorage::open(data_dir).await?),
    })
}

pub(crate) fn parse_device_id(text: &str) -> Result<DeviceId> {
    text.parse().map_err(|_| StorageError::Corrupt("device id"))
}

pub(crate) fn parse_account_id(text: &str) -> Result<AccountId> {
    text.parse()
        .map_err(|_| StorageError::Corrupt("account id"))
}

pub(crate) fn parse_session_id(text: &str) -> Result<SessionId> {
    Uuid::try_parse(text)
        .map(SessionId)
        .map_err(|_| StorageError::Corrupt("session id"))
}

pub(crate) fn seed_from_bytes(bytes: Vec<u8>) -> Result<SecretBox<[u8; 32]>> {
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StorageError::Corrupt("signing key"))?;
    Ok(SecretBox::new(Box::new(seed)))
}

/// Maps a unique-constraint violation to `conflict`, anything else to a
/// database error.
pub(crate) fn unique_violation(err: sqlx::Error, conflict: StorageError) -> StorageError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict,
        _ => StorageError::Database(err),
    }
}
