//! The database as a whole: which one it is, whether it answers, closing
//! it, sweeping expired rows, and wake-ups between server nodes.

use super::{Backend, Result};
use async_trait::async_trait;

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
    /// Circles nobody is in any more (everyone left, was removed, revoked
    /// or deleted), with their GroupInfo, snapshot, log and invites.
    pub circles: u64,
}

/// The database as a whole.
#[async_trait]
pub trait Operations {
    /// Which database this is.
    fn backend(&self) -> Backend;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Closes the pools; in-flight queries finish first.
    async fn close(&self);

    /// Removes everything expired.
    async fn purge_expired(&self, now: i64) -> Result<Purged>;

    /// Tells the other server nodes on this database about an event
    /// (PostgreSQL `NOTIFY`). A no-op on SQLite, where one node owns the file.
    async fn notify(&self, event: &str) -> Result<()>;

    /// Passes every event other nodes send to `deliver`, until the task
    /// is dropped. Returns at once on SQLite.
    async fn listen(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()>;
}
