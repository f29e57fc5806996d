//! The database's own durable single-row commit rate on the same disk: the
//! bar Hearth's send rate is held to.

use anyhow::Result;
use hearth_tests::{TestDb, rand_bytes};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Runs `concurrency` writers of `insert` until `seconds` pass: inserts per
/// second.
async fn writers<F, Fut>(concurrency: usize, seconds: u64, insert: F) -> Result<f64>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks = (0..concurrency).map(|_| {
        let (insert, done) = (insert.clone(), done.clone());
        tokio::spawn(async move {
            while Instant::now() < deadline {
                insert().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        })
    });
    for task in futures_util::future::join_all(tasks).await {
        task??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// The database's own durable single-row commit rate on the same disk:
/// `concurrency` writers, one 1 KiB row per transaction.
pub async fn commits(db: &TestDb, concurrency: usize, seconds: u64) -> Result<f64> {
    let row = Arc::new(rand_bytes::<1024>().to_vec());
    match db {
        TestDb::Sqlite(dir) => {
            // Like the server's writer: one connection, WAL, synchronous=FULL.
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.path().join("bench.db"))
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            sqlx::query("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, data BLOB)")
                .execute(&pool)
                .await?;
            let rate = writers(concurrency, seconds, {
                let pool = pool.clone();
                move || {
                    let (pool, row) = (pool.clone(), row.clone());
                    async move {
                        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                        sqlx::query("INSERT INTO rows (data) VALUES ($1)")
                            .bind(row.as_slice())
                            .execute(&mut *tx)
                            .await?;
                        Ok(tx.commit().await?)
                    }
                }
            })
            .await;
            pool.close().await;
            rate
        }
        TestDb::Postgres(url) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(u32::try_from(concurrency).unwrap_or(32))
                .connect(url)
                .await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS bench_rows (id BIGSERIAL PRIMARY KEY, data BYTEA)",
            )
            .execute(&pool)
            .await?;
            let rate = writers(concurrency, seconds, {
                let pool = pool.clone();
                move || {
                    let (pool, row) = (pool.clone(), row.clone());
                    async move {
                        sqlx::query("INSERT INTO bench_rows (data) VALUES ($1)")
                            .bind(row.as_slice())
                            .execute(&pool)
                            .await?;
                        Ok(())
                    }
                }
            })
            .await;
            pool.close().await;
            rate
        }
    }
}
