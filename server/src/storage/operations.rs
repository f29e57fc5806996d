//! The database as a whole: which one it is, whether it answers, closing
//! it, sweeping expired rows, and wake-ups between server nodes.

use super::{Backend, Result};
use async_trait::async_trait;

/// Rows removed by one sweep, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired challenges.
    pub challenges: u64,
    /// Expired link tokens and facilitator codes.
    pub link_tokens: u64,
    /// Expired refresh tokens and logins.
    pub logins: u64,
    /// Expired KeyPackages.
    pub key_packages: u64,
    /// Log entries and Welcomes past their circle's retention.
    pub log_entries: u64,
    /// Expired or used-up invites.
    pub invites: u64,
    /// Circles nobody is in any more (everyone left, was removed, revoked
    /// or deleted), with their GroupInfo, snapshot, log and invites.
    pub circles: u64,
}

/// What the database says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The name of this copy of the log (32 hex digits), told to clients
    /// with every read: a new one begins after a restore.
    pub generation: String,
    /// The database is a backup (`hearth-server admin backup` marked it):
    /// a server starting on it begins a new generation first.
    pub from_backup: bool,
    /// How many generations began after the first.
    pub restores: i64,
}

/// How far every circle's numbers jump when a generation begins: more than
/// any circle appends between a backup and its restore, so no number a
/// client has seen is given again; and small enough for 2^21 restores
/// before numbers pass 2^53 (where a JSON reader's doubles lose them).
pub const GENERATION_JUMP: i64 = 1 << 32;

/// The database as a whole.
#[async_trait]
pub trait Operations {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Closes the pools; in-flight queries finish first.
    async fn close(&self);

    /// What the database says of itself.
    async fn instance(&self) -> Result<Instance>;

    /// Begins a new generation named `generation` (after a restore): every
    /// circle's last number jumps ahead by `jump`, and the backup mark is
    /// cleared, in one transaction. Run with no server on the database.
    async fn begin_generation(&self, generation: &str, jump: i64) -> Result<Instance>;

    /// Marks the database as a backup (done to the copy, never the
    /// original): a server that starts on it begins a new generation first.
    async fn mark_as_backup(&self) -> Result<()>;

    /// Removes everything expired.
    async fn purge_expired(&self, now: i64) -> Result<Purged>;

    /// Tells the other server nodes on this database about an event
    /// (PostgreSQL `NOTIFY`). A no-op on SQLite, where one node owns the file.
    async fn notify(&self, event: &str) -> Result<()>;

    /// Passes every event other nodes send to `deliver`, until the task
    /// is dropped. Returns at once on SQLite.
    async fn listen(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()>;
}
