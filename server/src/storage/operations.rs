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

/// This area's half of the `Storage` implementation both databases share,
/// expanded by `impl_storage!` inside each backend's module.
macro_rules! operations_sql {
    () => {
        #[async_trait]
        impl Operations for This {
            fn backend(&self) -> Backend {
                <Self as SqlBackend>::BACKEND
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn close(&self) {
                self.close_pools().await;
            }

            async fn purge_expired(&self, now: i64) -> Result<Purged> {
                let mut tx = self.write().await?;
                let mut purge = async |statement: &'static str| -> Result<u64> {
                    let done = sqlx::query(statement).bind(now).execute(&mut *tx).await?;
                    Ok(done.rows_affected())
                };
                let purged = Purged {
                    challenges: purge(sql::PURGE_CHALLENGES).await?,
                    link_tokens: purge(sql::PURGE_LINK_TOKENS).await?,
                    logins: purge(sql::PURGE_REFRESH_TOKENS).await?
                        + purge(sql::PURGE_LOGINS).await?,
                    key_packages: purge(sql::PURGE_KEY_PACKAGES).await?,
                    log_entries: purge(sql::PURGE_LOG).await? + purge(sql::PURGE_WELCOMES).await?,
                    invites: purge(sql::PURGE_INVITES).await?,
                };
                tx.commit().await?;
                Ok(purged)
            }

            async fn notify(&self, event: &str) -> Result<()> {
                self.notify_nodes(event).await
            }

            async fn listen(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()> {
                self.listen_nodes(deliver).await
            }
        }
    };
}

pub(crate) use operations_sql;
