//! SQLite: the embedded default. One file in the data directory, WAL,
//! `synchronous=FULL`, `secure_delete=ON`, foreign keys on; the writer keeps
//! up to 64 MiB of pages (appends touch a few hundred index pages at once).
//!
//! All writes go through a pool of exactly one connection: SQLite has a single
//! writer anyway, and holding it in-process means transactions queue in order
//! instead of failing with `SQLITE_BUSY`. Reads use a separate pool of
//! read-only connections, which WAL lets run beside the writer. One server
//! process owns the file; several nodes need PostgreSQL.

use super::NewMessage;
use super::backend::SqlBackend;
use super::{Backend, Result, StorageError};
use hearth_protocol::CircleId;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Executor as _, QueryBuilder, Sqlite, Transaction};
use std::path::Path;
use std::time::Duration;

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "hearth.db";

/// Storage on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStorage {
    /// Opens (creating if needed) `data_dir/hearth.db` and applies migrations.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir).map_err(StorageError::DataDir)?;
        Self::open_file(&data_dir.join(DATABASE_FILE)).await
    }

    /// Opens (creating if needed) the database file at `path` and applies
    /// migrations.
    pub async fn open_file(path: &Path) -> Result<Self> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-process connection does not go stale: no ping before each
        // use (sqlx's default, a round trip to the connection's thread).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            // A COMMIT that failed (a full disk) leaves the connection inside
            // its transaction, and every later BEGIN on it would fail until
            // a restart: such a connection is closed and a fresh one opened.
            .after_release(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(
                base.clone()
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .pragma("secure_delete", "ON")
                    .pragma("cache_size", "-65536")
                    .pragma("temp_store", "MEMORY"),
            )
            .await?;
        super::migrator!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(base.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    /// Writes a consistent copy of the database to the new file `to`
    /// (`VACUUM INTO`: one read transaction, which the writer does not wait
    /// for; the copy is compacted, so no freed page of deleted rows goes
    /// with it).
    pub async fn copy_into(&self, to: &str) -> Result<()> {
        sqlx::query("VACUUM INTO $1")
            .bind(to)
            .execute(&self.reader)
            .await?;
        Ok(())
    }

    /// The settings of the writing connection, as SQLite reports them:
    /// `(journal_mode, synchronous, secure_delete, foreign_keys)`.
    pub async fn pragmas(&self) -> Result<(String, i64, i64, i64)> {
        let mut conn = self.writer.acquire().await?;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let secure_delete: i64 = sqlx::query_scalar("PRAGMA secure_delete")
            .fetch_one(&mut *conn)
            .await?;
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await?;
        Ok((journal, synchronous, secure_delete, foreign_keys))
    }
}

/// A batch of appends' transaction on the writer connection, begun and
/// ended by statements in the same requests as the batch's own (sqlx's
/// `Transaction` would cost a request each to begin and to commit).
#[derive(Debug)]
pub struct Append {
    conn: PoolConnection<Sqlite>,
    /// Begun and not yet committed or rolled back.
    open: bool,
}

impl Drop for Append {
    fn drop(&mut self) {
        if self.open {
            // Closing the connection rolls the transaction back; the pool
            // opens a new one.
            self.conn.close_on_drop();
        }
    }
}

impl SqlBackend for SqliteStorage {
    type Db = Sqlite;

    const BACKEND: Backend = Backend::Sqlite;

    /// SQLite's single writer makes the read and the delete one step.
    const CLAIM_KEY_PACKAGE: &str = "DELETE FROM key_packages WHERE id = (SELECT id FROM key_packages \
         WHERE device_id = $1 AND cipher_suite = $3 AND last_resort = 0 AND expires_at > $2 ORDER BY id LIMIT 1) \
         RETURNING data";

    /// The writer connection is the lock.
    const POSTPONE_WAKES: &str = "UPDATE push_wakes SET due_at = (SELECT t.last_wake_at + $2 \
         FROM push_targets t WHERE t.device_id = push_wakes.device_id) \
         WHERE device_id IN (SELECT w.device_id FROM push_wakes w \
         JOIN push_targets t ON t.device_id = w.device_id \
         WHERE w.due_at <= $1 AND (w.claimed_until IS NULL OR w.claimed_until <= $1) \
         AND t.last_wake_at + $2 > $1)";

    const CLAIM_WAKES: &str = "UPDATE push_wakes SET claimed_until = $2, attempts = attempts + 1 \
         WHERE device_id IN (SELECT device_id FROM push_wakes WHERE due_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at LIMIT $3) \
         RETURNING device_id, attempts, coalesced";

    /// The writer connection is the lock: reading the row is enough.
    const LOCK_LOGIN_OF_REFRESH_TOKEN: &str = "SELECT s.id FROM logins s \
         JOIN refresh_tokens r ON r.login_id = s.id WHERE r.token_hash = $1";

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    type Append = Append;

    /// `BEGIN IMMEDIATE` and the read in one request to the writer's thread;
    /// the read is built for the batch (SQLite has no arrays; preparing a
    /// statement is cheap here).
    async fn begin_append(
        &self,
        circles: &[&CircleId],
        senders: &[String],
        messages: &[NewMessage],
    ) -> Result<(Append, Vec<SqliteRow>)> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "BEGIN IMMEDIATE; \
             WITH locked AS (SELECT id, epoch, last_seq FROM circles WHERE id IN (",
        );
        let mut list = query.separated(", ");
        for circle in circles {
            list.push_bind(circle.as_bytes());
        }
        query.push(
            ") ORDER BY id) SELECT 0 AS part, id AS circle_id, '' AS who, '' AS what, \
             epoch AS a, last_seq AS b, CAST(NULL AS bytea) AS digest FROM locked \
             UNION ALL SELECT 1, circle_id, device_id, '', 0, 0, NULL FROM roster \
             WHERE circle_id IN (",
        );
        let mut list = query.separated(", ");
        for circle in circles {
            list.push_bind(circle.as_bytes());
        }
        query.push(") AND device_id IN (");
        let mut list = query.separated(", ");
        for sender in senders {
            list.push_bind(sender.as_str());
        }
        query.push(
            ") UNION ALL SELECT 2, circle_id, sender_id, message_id, seq, 0, digest \
             FROM log_entries WHERE ",
        );
        for (index, message) in messages.iter().enumerate() {
            if index > 0 {
                query.push(" OR ");
            }
            query
                .push("(circle_id = ")
                .push_bind(message.circle.as_bytes())
                .push(" AND sender_id = ")
                .push_bind(message.sender.to_string())
                .push(" AND message_id = ")
                .push_bind(message.message_id.to_string())
                .push(")");
        }
        // Open from here on: should anything below fail, or the caller
        // stop waiting, the connection is closed (which rolls back) rather
        // than returned to the pool inside a transaction.
        let mut append = Append {
            conn: self.writer.acquire().await?,
            open: true,
        };
        let rows = query.build().fetch_all(&mut *append.conn).await?;
        Ok((append, rows))
    }

    async fn finish_append(
        &self,
        mut append: Append,
        mut writes: QueryBuilder<Sqlite>,
    ) -> Result<()> {
        writes.push("; COMMIT");
        writes.build().execute(&mut *append.conn).await?;
        append.open = false;
        Ok(())
    }

    async fn abandon_append(&self, mut append: Append) -> Result<()> {
        append.conn.execute("ROLLBACK").await?;
        append.open = false;
        Ok(())
    }

    async fn close_pools(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// One process owns the file: there are no other nodes to tell.
    async fn notify_nodes(&self, _event: &str) -> Result<()> {
        Ok(())
    }

    fn notice_in_statement(&self, _events: &str) -> Option<(&'static str, String)> {
        None
    }

    async fn listen_nodes(&self, _deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()> {
        Ok(())
    }
}

/// Every storage area, over this backend's types (`shared/mod.rs`).
type This = SqliteStorage;

#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
#[path = "shared/mod.rs"]
mod shared;
