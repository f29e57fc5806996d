//! PostgreSQL: production, and several server nodes on one database.
//!
//! The SQL is shared with SQLite (`storage::sql`); what differs is the pool (one,
//! for reads and writes), the KeyPackage claim (`FOR UPDATE SKIP LOCKED`), and
//! wake-ups between nodes (`LISTEN/NOTIFY`). Migrations take PostgreSQL's
//! advisory lock, so nodes starting together apply them once.

use super::NewMessage;
use super::backend::SqlBackend;
use super::{Backend, Result};
use hearth_protocol::CircleId;
use sqlx::postgres::PgRow;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The `LISTEN/NOTIFY` channel for cross-node wake-ups.
const EVENT_CHANNEL: &str = "hearth_events";

/// Storage on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStorage {
    pool: PgPool,
    /// The listener's own connection, apart from the requests' pool and
    /// tested before each use: after a restart it reconnects on its first
    /// try instead of failing on each dead pooled connection in turn.
    listen_pool: PgPool,
    /// When the node last saw its database connections drop.
    lost: Arc<LostAt>,
    /// This node's first line in every notification it sends (`n:<hex>`),
    /// so that its listener skips its own: this node has told its sockets
    /// already, often with the entry itself.
    node: String,
}

/// How long a request waits for a pooled connection before it is answered
/// `503 unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// A pooled connection idle this long is pinged before it is used again.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(30);

/// The listener's first wait before it tries to reconnect, doubled after
/// each failure up to [`RELISTEN_AT_MOST`].
const RELISTEN_FIRST: Duration = Duration::from_millis(100);

/// The listener's longest wait between reconnection attempts.
const RELISTEN_AT_MOST: Duration = Duration::from_secs(2);

/// The last moment the node saw its connections to the database drop (its
/// listener's connection closing) or come back (the listener listening
/// again). A pooled connection that went idle before it may have died with
/// the others (PostgreSQL restarted, a proxy cut it), so it is pinged before
/// its next use, and a dead one is replaced instead of failing a request.
#[derive(Debug)]
struct LostAt {
    start: Instant,
    /// Nanoseconds after `start`, plus one; 0 when never.
    at: AtomicU64,
}

impl LostAt {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            at: AtomicU64::new(0),
        }
    }

    /// Notes that connections dropped now.
    fn now(&self) {
        let nanos = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.at.store(nanos + 1, Ordering::Release);
    }

    /// Whether a connection idle for `idle_for` went idle before the last
    /// drop.
    fn since_idle(&self, idle_for: Duration) -> bool {
        let at = self.at.load(Ordering::Acquire);
        if at == 0 {
            return false;
        }
        let Some(idle_since) = Instant::now().checked_sub(idle_for) else {
            return true;
        };
        let idle_since = u64::try_from(idle_since.saturating_duration_since(self.start).as_nanos())
            .unwrap_or(u64::MAX - 1);
        idle_since < at
    }
}

impl PgStorage {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        // Every statement looks rows up by key; planning them anew at each
        // execution (PostgreSQL's custom plans, which it kept choosing for
        // the batch read) cost more than running them.
        let options =
            PgConnectOptions::from_str(url)?.options([("plan_cache_mode", "force_generic_plan")]);
        // sqlx pings a connection before every use by default: a round
        // trip to PostgreSQL per query. Only a connection that sat idle for
        // a while (which a firewall or `idle_session_timeout` may have cut)
        // is checked; a busy one is proven by its last query.
        let lost = Arc::new(LostAt::new());
        let lost_seen = lost.clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            // A database that is away is said so in seconds, not held for
            // a phone's whole request timeout.
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            // A connection whose transaction did not end (a COMMIT that
            // failed) is closed, not handed to the next request.
            .after_release(|conn, _| {
                Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
            })
            .before_acquire(move |conn, meta| {
                let suspect =
                    meta.idle_for >= CHECK_IDLE_AFTER || lost_seen.since_idle(meta.idle_for);
                Box::pin(async move {
                    if suspect {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await?;
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .connect_lazy_with(options);
        super::migrator!("./migrations/postgres").run(&pool).await?;
        // Only needs to differ between nodes; should the OS refuse
        // randomness, the process id and the clock still do.
        let node = crate::crypto::random_bytes::<8>()
            .map(u64::from_ne_bytes)
            .unwrap_or_else(|_| {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                u64::from(std::process::id()) << 32 | u64::from(nanos)
            });
        Ok(Self {
            pool,
            listen_pool,
            lost,
            node: format!("n:{node:016x}"),
        })
    }
}

/// The batch read of [`SqlBackend::begin_append`], over arrays.
const READ_FOR_APPEND: &str = "WITH locked AS (SELECT id, epoch, last_seq FROM circles \
     WHERE id = ANY($1) ORDER BY id FOR UPDATE) \
     SELECT 0 AS part, id AS circle_id, '' AS who, '' AS what, epoch AS a, last_seq AS b, \
     CAST(NULL AS bytea) AS digest FROM locked \
     UNION ALL SELECT 1, circle_id, device_id, '', 0, 0, NULL FROM roster \
     WHERE circle_id = ANY($1) AND device_id = ANY($2) \
     UNION ALL SELECT 2, e.circle_id, e.sender_id, e.message_id, e.seq, 0, e.digest \
     FROM unnest($3::bytea[], $4::text[], $5::text[]) AS k(circle_id, sender_id, message_id) \
     CROSS JOIN LATERAL (SELECT circle_id, sender_id, message_id, seq, digest \
     FROM log_entries WHERE circle_id = k.circle_id AND sender_id = k.sender_id \
     AND message_id = k.message_id LIMIT 1) e";

impl SqlBackend for PgStorage {
    type Db = Postgres;

    const BACKEND: Backend = Backend::Postgres;

    /// `SKIP LOCKED` lets concurrent claims take different rows instead of
    /// queueing for (and then missing) the same one.
    const CLAIM_KEY_PACKAGE: &str = "DELETE FROM key_packages WHERE id = (SELECT id FROM key_packages \
         WHERE device_id = $1 AND cipher_suite = $3 AND last_resort = 0 AND expires_at > $2 ORDER BY id LIMIT 1 \
         FOR UPDATE SKIP LOCKED) RETURNING data";

    /// Rows another node is claiming are skipped, not waited for.
    const POSTPONE_WAKES: &str = "UPDATE push_wakes SET due_at = (SELECT t.last_wake_at + $2 \
         FROM push_targets t WHERE t.device_id = push_wakes.device_id) \
         WHERE device_id IN (SELECT w.device_id FROM push_wakes w \
         JOIN push_targets t ON t.device_id = w.device_id \
         WHERE w.due_at <= $1 AND (w.claimed_until IS NULL OR w.claimed_until <= $1) \
         AND t.last_wake_at + $2 > $1 FOR UPDATE OF w SKIP LOCKED)";

    const CLAIM_WAKES: &str = "UPDATE push_wakes SET claimed_until = $2, attempts = attempts + 1 \
         WHERE device_id IN (SELECT device_id FROM push_wakes WHERE due_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING device_id, attempts, coalesced";

    /// Only the login row (`OF s`): locking the token too would take the two
    /// in the opposite order to a logout's cascade.
    const LOCK_LOGIN_OF_REFRESH_TOKEN: &str = "SELECT s.id FROM logins s \
         JOIN refresh_tokens r ON r.login_id = s.id WHERE r.token_hash = $1 FOR UPDATE OF s";

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    async fn write(&self) -> Result<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    type Append = Transaction<'static, Postgres>;

    /// The read is one fixed statement whatever the batch (arrays, not a
    /// list of parameters per message): PostgreSQL plans it once per
    /// connection instead of at every batch, which cost more than running it.
    async fn begin_append(
        &self,
        circles: &[&CircleId],
        senders: &[String],
        messages: &[NewMessage],
    ) -> Result<(Self::Append, Vec<PgRow>)> {
        let mut tx = self.pool.begin().await?;
        let circles: Vec<&[u8]> = circles.iter().map(|c| c.as_bytes()).collect();
        let entry_circles: Vec<&[u8]> = messages.iter().map(|m| m.circle.as_bytes()).collect();
        let entry_senders: Vec<String> = messages.iter().map(|m| m.sender.to_string()).collect();
        let entry_ids: Vec<String> = messages.iter().map(|m| m.message_id.to_string()).collect();
        let rows = sqlx::query(READ_FOR_APPEND)
            .bind(circles)
            .bind(senders)
            .bind(entry_circles)
            .bind(entry_senders)
            .bind(entry_ids)
            .fetch_all(&mut *tx)
            .await?;
        Ok((tx, rows))
    }

    async fn finish_append(
        &self,
        mut append: Self::Append,
        mut writes: QueryBuilder<Postgres>,
    ) -> Result<()> {
        writes.build().execute(&mut *append).await?;
        append.commit().await?;
        Ok(())
    }

    async fn abandon_append(&self, append: Self::Append) -> Result<()> {
        append.rollback().await?;
        Ok(())
    }

    async fn close_pools(&self) {
        self.listen_pool.close().await;
        self.pool.close().await;
    }

    async fn notify_nodes(&self, event: &str) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENT_CHANNEL)
            .bind(format!("{}\n{event}", self.node))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn notice_in_statement(&self, events: &str) -> Option<(&'static str, String)> {
        Some((EVENT_CHANNEL, format!("{}\n{events}", self.node)))
    }

    /// Listens until the node stops, never giving up. Whenever the
    /// connection drops, the hub hears [`Notice::Missed`](super::Notice::Missed)
    /// at once (so the node's sockets look for themselves, and keep looking
    /// while the database is away) and again once the node listens anew: a
    /// notice sent before that moment is gone, and a socket's read before it
    /// could not see what was appended after. Failed attempts in between say
    /// nothing more (every socket looking again at each would only load a
    /// database that is coming back).
    async fn listen_nodes(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()> {
        let mut interrupted = false;
        let mut wait = RELISTEN_FIRST;
        loop {
            let listening = async {
                let mut listener =
                    sqlx::postgres::PgListener::connect_with(&self.listen_pool).await?;
                listener.listen(EVENT_CHANNEL).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            let mut listener = match listening.await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "event listener could not connect; retrying");
                    interrupted = true;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RELISTEN_AT_MOST);
                    continue;
                }
            };
            if interrupted {
                tracing::info!("event listener listens again");
                self.lost.now();
                deliver(super::Notice::Missed.encode());
            }
            wait = RELISTEN_FIRST;
            loop {
                // `Ok(None)`: the connection was lost. (The listener would
                // reconnect through the pool on its next call; it is dropped
                // instead, and a tested connection taken above.)
                match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        let mut lines = notification.payload().lines();
                        if lines.next() == Some(self.node.as_str()) {
                            continue;
                        }
                        for event in lines {
                            deliver(event.to_owned());
                        }
                    }
                    Ok(None) | Err(_) => {
                        tracing::warn!("event listener lost its connection; reconnecting");
                        self.lost.now();
                        deliver(super::Notice::Missed.encode());
                        interrupted = true;
                        break;
                    }
                }
            }
        }
    }
}

/// Every storage area, over this backend's types (`shared/mod.rs`).
type This = PgStorage;

#[allow(clippy::duplicate_mod)] // compiled once per backend, on purpose
#[path = "shared/mod.rs"]
mod shared;
