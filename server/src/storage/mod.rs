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
use hearth_protocol::circles::{EntryKind, Role};
use hearth_protocol::{AccountId, CircleId, DeviceId};
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
    /// A circle with this id exists already.
    #[error("a circle with this id exists already")]
    CircleExists,
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
pub struct LoginId(pub Uuid);

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
        /// The device the login belongs to.
        device_id: DeviceId,
        /// The login (unchanged by rotation).
        login_id: LoginId,
    },
    /// The token had already been rotated: the whole login is now revoked.
    Reused,
    /// Unknown, expired, or belongs to a revoked device.
    Invalid,
}

/// Who an access token speaks for, as far as the database still agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLogin {
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
    /// Expired refresh tokens and logins.
    pub logins: u64,
    /// Expired KeyPackages.
    pub key_packages: u64,
    /// Log entries and Welcomes past their circle's retention.
    pub log_entries: u64,
    /// Expired or used-up invites.
    pub invites: u64,
}

/// A validated KeyPackage about to be stored.
#[derive(Debug, Clone)]
pub struct NewKeyPackage {
    /// Its MLS hash reference (unique).
    pub hash_ref: Vec<u8>,
    /// The TLS-serialised KeyPackage.
    pub data: Vec<u8>,
    /// Unix seconds when its lifetime ends.
    pub expires_at: i64,
}

/// What happened to one KeyPackage of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPackageStored {
    /// Stored.
    Stored,
    /// The same KeyPackage is stored already.
    Duplicate,
    /// The pool is at its limit.
    PoolFull,
}

/// A circle about to be created.
#[derive(Debug, Clone)]
pub struct NewCircle {
    /// The MLS group id.
    pub id: CircleId,
    /// Members besides facilitators.
    pub max_members: i64,
    /// Seconds log entries are kept at most.
    pub retention_secs: i64,
    /// GroupInfo at epoch 0.
    pub group_info: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A device on a circle's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRecord {
    /// The device.
    pub device_id: DeviceId,
    /// Its role.
    pub role: Role,
    /// The sequence number of the commit that added it (0 for the creator);
    /// it reads only entries after this.
    pub joined_seq: i64,
    /// The highest sequence number it acknowledged.
    pub acked_seq: i64,
}

/// A stored circle with its roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleRecord {
    /// The MLS group id.
    pub id: CircleId,
    /// The current epoch.
    pub epoch: i64,
    /// The newest log entry's sequence number.
    pub last_seq: i64,
    /// Members besides facilitators.
    pub max_members: i64,
    /// Seconds log entries are kept at most.
    pub retention_secs: i64,
    /// Who is in it.
    pub roster: Vec<RosterRecord>,
}

impl CircleRecord {
    /// The roster entry of a device, if it is on the roster.
    pub fn member(&self, device_id: DeviceId) -> Option<&RosterRecord> {
        self.roster.iter().find(|r| r.device_id == device_id)
    }
}

/// A commit bundle the caller has checked against the roster of `epoch`.
#[derive(Debug, Clone)]
pub struct NewCommit {
    /// The device posting it.
    pub sender: DeviceId,
    /// The epoch it was made in; accepted only if still current.
    pub epoch: i64,
    /// The commit message.
    pub commit: Vec<u8>,
    /// The Welcome, queued for each added device.
    pub welcome: Option<Vec<u8>>,
    /// The new GroupInfo.
    pub group_info: Option<Vec<u8>>,
    /// Devices joining (as members), each with the id of its queued Welcome.
    pub added: Vec<(DeviceId, Uuid)>,
    /// Devices leaving.
    pub removed: Vec<DeviceId>,
    /// The join request this commit approves, consumed with it.
    pub join_request: Option<Uuid>,
    /// Unix seconds.
    pub now: i64,
}

/// An invite about to be stored.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Its id.
    pub id: Uuid,
    /// The circle it admits to.
    pub circle_id: CircleId,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many times it may be redeemed.
    pub max_uses: i64,
    /// Unix seconds.
    pub now: i64,
}

/// A stored invite (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// Its id.
    pub id: Uuid,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many times it may be redeemed.
    pub max_uses: i64,
    /// How many times it was.
    pub uses: i64,
}

/// A join request about to be stored.
#[derive(Debug, Clone)]
pub struct NewJoinRequest {
    /// Its id.
    pub id: Uuid,
    /// The device that redeemed the invite.
    pub requester: DeviceId,
    /// The devices to add: the requester's account's active devices.
    pub device_ids: Vec<DeviceId>,
    /// The opaque introduction note.
    pub note: Option<Vec<u8>>,
    /// Unix seconds.
    pub now: i64,
}

/// A stored join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequestRecord {
    /// Its id.
    pub id: Uuid,
    /// The devices to add.
    pub device_ids: Vec<DeviceId>,
    /// The opaque introduction note.
    pub note: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
}

/// What became of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Appended at `seq`; the circle is now at `epoch`.
    Accepted {
        /// The commit's sequence number.
        seq: i64,
        /// The new epoch.
        epoch: i64,
    },
    /// Another commit got there first.
    Stale {
        /// The circle's epoch now.
        current_epoch: i64,
    },
    /// No such circle.
    NoCircle,
}

/// An application message about to be appended.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The sending device.
    pub sender: DeviceId,
    /// The client's id for it.
    pub message_id: Uuid,
    /// The epoch it was encrypted in.
    pub epoch: i64,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// SHA-256 of the ciphertext, to recognise an identical resend.
    pub digest: [u8; 32],
    /// Unix seconds.
    pub now: i64,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended.
    Accepted {
        /// Its sequence number.
        seq: i64,
        /// The circle's epoch.
        epoch: i64,
    },
    /// The same id and bytes were accepted before, at `seq`.
    Repeated {
        /// The original sequence number.
        seq: i64,
        /// The circle's epoch.
        epoch: i64,
    },
    /// The same id was used before with other bytes.
    Conflict,
    /// The message's epoch is outside the accepted window.
    Stale {
        /// The circle's epoch now.
        current_epoch: i64,
    },
    /// The sender is not on the roster (or there is no such circle).
    NotMember,
}

/// One stored log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number.
    pub seq: i64,
    /// Epoch sent in.
    pub epoch: i64,
    /// Commit or application message.
    pub kind: EntryKind,
    /// Sending device.
    pub sender: DeviceId,
    /// The MLS message.
    pub ciphertext: Vec<u8>,
    /// Unix seconds received.
    pub created_at: i64,
}

/// A Welcome waiting for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeRecord {
    /// Its id.
    pub id: Uuid,
    /// The circle.
    pub circle_id: CircleId,
    /// The commit's sequence number.
    pub seq: i64,
    /// The epoch it admits to.
    pub epoch: i64,
    /// The Welcome message.
    pub data: Vec<u8>,
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

    /// Revokes a device of the account and ends its logins. False when the
    /// account has no such active device.
    async fn revoke_device(
        &self,
        account_id: AccountId,
        device_id: DeviceId,
        now: i64,
    ) -> Result<bool>;

    /// Deletes the account and every row it owns.
    async fn delete_account(&self, account_id: AccountId) -> Result<()>;

    /// Starts a login for a device with its first refresh token.
    async fn create_login(
        &self,
        login_id: LoginId,
        device_id: DeviceId,
        now: i64,
        token: &NewRefreshToken,
    ) -> Result<()>;

    /// Spends a refresh token and stores its successor, or revokes the login
    /// when the token was already spent. One transaction.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8; 32],
        next: &NewRefreshToken,
        now: i64,
    ) -> Result<RefreshOutcome>;

    /// Ends a login (log out): its refresh tokens and access tokens stop
    /// working. False when there was no such login.
    async fn end_login(&self, login_id: LoginId) -> Result<bool>;

    /// The device and account behind an access token, when the login still
    /// exists and the device is not revoked.
    async fn live_login(&self, login_id: LoginId, device_id: DeviceId)
    -> Result<Option<LiveLogin>>;

    /// Stores KeyPackages for a device while its pool (unexpired, not last
    /// resort) holds fewer than `max_pool`.
    async fn store_key_packages(
        &self,
        device_id: DeviceId,
        items: &[NewKeyPackage],
        max_pool: u32,
        now: i64,
    ) -> Result<Vec<KeyPackageStored>>;

    /// Replaces the device's last-resort KeyPackage.
    async fn store_last_resort(
        &self,
        device_id: DeviceId,
        item: &NewKeyPackage,
        now: i64,
    ) -> Result<KeyPackageStored>;

    /// Takes one unexpired KeyPackage of the device, or, when none is left,
    /// reads (without consuming) its last resort. `(bytes, is_last_resort)`.
    async fn claim_key_package(
        &self,
        device_id: DeviceId,
        now: i64,
    ) -> Result<Option<(Vec<u8>, bool)>>;

    /// The device's unexpired pool size and whether it has a last resort.
    async fn key_package_count(&self, device_id: DeviceId, now: i64) -> Result<(u32, bool)>;

    /// Creates a circle at epoch 0 with the creator as facilitator.
    async fn create_circle(&self, circle: &NewCircle, creator: DeviceId) -> Result<()>;

    /// A circle and its roster.
    async fn circle(&self, id: &CircleId) -> Result<Option<CircleRecord>>;

    /// The circles whose roster holds the device.
    async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>>;

    /// Applies a commit bundle in one transaction if the circle is still at
    /// `commit.epoch`: appends the commit, bumps the epoch, applies the roster
    /// change, keeps the GroupInfo, queues the Welcomes.
    async fn apply_commit(&self, circle: &CircleId, commit: &NewCommit) -> Result<CommitOutcome>;

    /// Appends an application message, idempotently by message id, if the
    /// sender is on the roster and the epoch is within `epoch_window` of the
    /// current one.
    async fn append_message(
        &self,
        circle: &CircleId,
        message: &NewMessage,
        epoch_window: i64,
    ) -> Result<AppendOutcome>;

    /// Up to `limit` entries after `after` (and after the device joined).
    /// `None` when the device is not on the roster.
    async fn read_log(
        &self,
        circle: &CircleId,
        device_id: DeviceId,
        after: i64,
        limit: i64,
    ) -> Result<Option<Vec<LogRecord>>>;

    /// Records that the device processed everything up to `seq`, then deletes
    /// the entries every device on the roster has acknowledged. False when the
    /// device is not on the roster.
    async fn acknowledge(&self, circle: &CircleId, device_id: DeviceId, seq: i64) -> Result<bool>;

    /// The latest GroupInfo of a circle.
    async fn group_info(&self, circle: &CircleId) -> Result<Option<Vec<u8>>>;

    /// Welcomes waiting for the device, oldest first.
    async fn welcomes(&self, device_id: DeviceId) -> Result<Vec<WelcomeRecord>>;

    /// Acknowledges (deletes) a Welcome. False when there was none.
    async fn delete_welcome(&self, device_id: DeviceId, id: Uuid) -> Result<bool>;

    /// Stores an invite.
    async fn create_invite(&self, invite: &NewInvite) -> Result<()>;

    /// A circle's invites.
    async fn invites(&self, circle: &CircleId) -> Result<Vec<InviteRecord>>;

    /// Deletes an invite. False when the circle has no such invite.
    async fn revoke_invite(&self, circle: &CircleId, id: Uuid) -> Result<bool>;

    /// Uses an invite (unexpired, uses left) and queues the join request, in
    /// one transaction. The circle, or `None` when the token is no good.
    async fn redeem_invite(
        &self,
        token_hash: &[u8; 32],
        request: &NewJoinRequest,
    ) -> Result<Option<CircleId>>;

    /// A circle's pending join requests, oldest first.
    async fn join_requests(&self, circle: &CircleId) -> Result<Vec<JoinRequestRecord>>;

    /// One pending join request.
    async fn join_request(&self, circle: &CircleId, id: Uuid) -> Result<Option<JoinRequestRecord>>;

    /// Deletes a join request (declined). False when there was none.
    async fn decline_join_request(&self, circle: &CircleId, id: Uuid) -> Result<bool>;

    /// Removes everything expired.
    async fn purge_expired(&self, now: i64) -> Result<Purged>;

    /// Tells the other server nodes on this database about an event
    /// (PostgreSQL `NOTIFY`). A no-op on SQLite, where one node owns the file.
    async fn announce(&self, event: &str) -> Result<()>;

    /// Passes every event other nodes announce to `deliver`, until the task
    /// is dropped. Returns at once on SQLite.
    async fn listen(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()>;
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

pub(crate) fn parse_login_id(text: &str) -> Result<LoginId> {
    Uuid::try_parse(text)
        .map(LoginId)
        .map_err(|_| StorageError::Corrupt("login id"))
}

pub(crate) fn parse_circle_id(bytes: Vec<u8>) -> Result<CircleId> {
    CircleId::from_bytes(bytes).map_err(|_| StorageError::Corrupt("circle id"))
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::try_parse(text).map_err(|_| StorageError::Corrupt("uuid"))
}

pub(crate) fn join_device_ids(ids: &[DeviceId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn split_device_ids(text: &str) -> Result<Vec<DeviceId>> {
    text.split_whitespace().map(parse_device_id).collect()
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Facilitator => "facilitator",
        Role::Member => "member",
    }
}

pub(crate) fn parse_role(text: &str) -> Result<Role> {
    match text {
        "facilitator" => Ok(Role::Facilitator),
        "member" => Ok(Role::Member),
        _ => Err(StorageError::Corrupt("role")),
    }
}

pub(crate) fn kind_code(kind: EntryKind) -> i64 {
    match kind {
        EntryKind::Application => 0,
        EntryKind::Commit => 1,
    }
}

pub(crate) fn parse_kind(code: i64) -> Result<EntryKind> {
    match code {
        0 => Ok(EntryKind::Application),
        1 => Ok(EntryKind::Commit),
        _ => Err(StorageError::Corrupt("entry kind")),
    }
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
