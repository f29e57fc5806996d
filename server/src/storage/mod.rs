//! Storage: one interface ([`Storage`]), one implementation per database.
//!
//! [`Storage`] is the sum of one trait per area — [`Operations`],
//! [`IdentityStore`], [`KeyPackageStore`], [`CircleStore`],
//! [`EnrollmentStore`], [`SnapshotStore`], [`PushStore`], [`FacilitatorStore`] — each in its own module with the records it takes
//! and returns. Callers hold an `Arc<dyn Storage>`.
//!
//! [`sqlite::SqliteStorage`] is the embedded default; [`postgres::PgStorage`] is
//! for production and for several server nodes on one database. Both implement
//! the small [`backend::SqlBackend`] seam (pools, write transactions, the
//! statements that differ, cross-node events), and the shared implementation
//! (`shared/`, one file per area with its SQL) is compiled over each. Both
//! run the same conformance suite (`tests/e2e/storage/`), which calls every
//! method of every area.
//!
//! Every write is one transaction: a method that writes runs a single
//! statement, or opens [`backend::SqlBackend::write`] and commits once, so a
//! caller never sees half of an operation (`tests/e2e/layering.rs` holds
//! this). Reads take one statement where they can (a circle with its roster,
//! a device's circles); the few that take two say why (`read_log` reads,
//! then checks the roster; `claim_key_package` falls back to the last
//! resort; `wake_candidates` looks per wake).
//!
//! Timestamps are unix seconds passed in by the caller, so the storage layer has
//! no clock of its own. Secrets arrive already hashed.

/// The migrations of one database kind, as every node runs them at start.
/// Migrations a newer release applied (a node of it started on this
/// database: a rolling upgrade) are no reason to refuse to start: the rule
/// that every migration only adds (`docs/design/storage.md`, *Migrations*)
/// keeps this release's statements valid on the newer schema.
macro_rules! migrator {
    ($dir:literal) => {{
        let mut migrator = sqlx::migrate!($dir);
        migrator.set_ignore_missing(true);
        migrator
    }};
}
pub(crate) use migrator;

pub mod backend;
pub mod circles;
pub mod enrollment;
pub mod facilitators;
pub mod identity;
pub mod key_packages;
pub mod notice;
pub mod operations;
pub mod postgres;
pub mod push;
pub mod snapshots;
pub mod sqlite;

pub use circles::{
    Acknowledgement, AddedDevice, AppendOutcome, CircleRecord, CircleStore, CommitOutcome,
    GroupInfoRecord, LogRecord, NewCircle, NewCommit, NewMessage, RosterRecord, WelcomeRecord,
};
pub use enrollment::{EnrollmentStore, InviteRecord, JoinRequestRecord, NewInvite, NewJoinRequest};
pub use facilitators::{FacilitatorStore, Figures, Usage};
pub use identity::{
    DeviceRecord, IdentityStore, LiveLogin, LoginId, NewDevice, NewRefreshToken, RefreshOutcome,
    SigningKeyRecord,
};
pub use key_packages::{KeyPackageStore, KeyPackageStored, NewKeyPackage};
pub use notice::Notice;
pub use operations::{GENERATION_JUMP, Instance, Operations, Purged};
pub use push::{ClaimedWake, PushStore, PushTargetRecord, WakeFor, WakeOutcome, WakeQueue};
pub use snapshots::{SnapshotOutcome, SnapshotRecord, SnapshotStore};

use hearth_protocol::circles::{EntryKind, Role};
use hearth_protocol::{AccountId, CircleId, DeviceId};
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
    /// The device redeeming an invite is on the circle's roster already
    /// (nothing was spent).
    #[error("the device is on the circle's roster already")]
    AlreadyOnRoster,
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(sqlx::Error),
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

/// Every database error passes here, and is counted by kind
/// (`hearth_database_errors_total`, see [`StorageError::kind`]).
impl From<sqlx::Error> for StorageError {
    fn from(err: sqlx::Error) -> Self {
        let err = Self::Database(err);
        metrics::counter!("hearth_database_errors_total", "kind" => err.kind()).increment(1);
        err
    }
}

impl StorageError {
    /// What kind of database error this is, for metrics: `full` (the disk),
    /// `unavailable` (out of reach for now), `conflict` (a uniqueness rule
    /// or a concurrent transaction: usually answered as such), `other` (a
    /// bug, or damage), or `none` for an error that is not the database's.
    pub fn kind(&self) -> &'static str {
        let Self::Database(err) = self else {
            return "none";
        };
        if self.is_full() {
            return "full";
        }
        if self.is_unavailable() {
            return "unavailable";
        }
        match err {
            sqlx::Error::Database(db)
                if db.is_unique_violation()
                    || db.code().is_some_and(|c| c == "40001" || c == "40P01") =>
            {
                "conflict"
            }
            _ => "other",
        }
    }

    /// Whether the disk the database writes to is full: PostgreSQL's
    /// `disk_full` (53100), SQLite's `SQLITE_FULL` (13, whatever the
    /// extended code). Reads still work; writes will once there is room.
    pub fn is_full(&self) -> bool {
        let Self::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        db.code().is_some_and(|code| {
            code == "53100" || code.parse::<i32>().is_ok_and(|n| n & 0xff == 13)
        })
    }

    /// Whether the database is out of reach or out of room for now — not a
    /// bug, and likely to pass: connections refused, closed or timed out,
    /// the database gone, restarting, out of connections or of disk, a
    /// SQLite file that is busy or full. The client should try again
    /// shortly.
    pub fn is_unavailable(&self) -> bool {
        let Self::Database(err) = self else {
            return false;
        };
        match err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
            _ => false,
        }
    }
}

/// PostgreSQL's SQLSTATEs and SQLite's result codes (primary or extended)
/// that mean "not now" rather than "never".
fn unavailable_code(code: &str) -> bool {
    // PostgreSQL: connection exceptions (08), insufficient resources (53:
    // disk full, out of memory, too many connections), operator
    // intervention (57P01-57P05: shutdown, cannot connect now, idle
    // session timeout), the database dropped or renamed under us (3D000).
    if code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code == "3D000"
    {
        return true;
    }
    // SQLite: BUSY (5), LOCKED (6), IOERR (10), FULL (13), CANTOPEN (14),
    // whatever the extended code.
    code.parse::<i32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14))
}

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The one storage interface: every area. See the module documentation.
pub trait Storage:
    Operations
    + IdentityStore
    + KeyPackageStore
    + CircleStore
    + EnrollmentStore
    + SnapshotStore
    + PushStore
    + FacilitatorStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Storage for T where
    T: Operations
        + IdentityStore
        + KeyPackageStore
        + CircleStore
        + EnrollmentStore
        + SnapshotStore
        + PushStore
        + FacilitatorStore
        + Send
        + Sync
        + 'static
{
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

/// Maps a unique-constraint violation to `conflict`, anything else to a
/// database error.
pub(crate) fn unique_violation(err: sqlx::Error, conflict: StorageError) -> StorageError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict,
        _ => StorageError::Database(err),
    }
}
