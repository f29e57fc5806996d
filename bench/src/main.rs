//! `hearth-bench`: how fast Hearth accepts messages, beside how fast its own
//! database commits durably on the same disk, measured in one run.
//!
//! It starts the real server (in this process, on a fresh database, every
//! core working), sets up circles of twelve devices through the real API
//! (registration by signed challenge, circle creation, a commit adding
//! eleven members), then for each concurrency level drives sends of 1 KiB
//! ciphertext from random members for a fixed time and counts the answered
//! ones. Beside it, the same number of writers insert 1 KiB rows, one
//! durable transaction each, into a table of the same database kind on the
//! same disk. It prints a table; it asserts nothing (a benchmark, not a
//! test). Run it with `scripts/bench` (release build, PostgreSQL with fsync
//! on).
//!
//! The server never decrypts, so the ciphertext is random bytes and the
//! commit is opaque: what is measured is the relay's own path
//! (authentication, rate limits, the ordered durable append).

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use hearth_protocol::circles::{Accepted, CommitBundle, SendMessage};
use hearth_protocol::{Base64Bytes, CircleId};
use hearth_tests::{Db, TestApp, TestDb, rand_bytes};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Hearth's send rate beside the database's durable commit rate.
#[derive(Debug, Parser)]
struct Args {
    /// sqlite, postgres or both (PostgreSQL needs TEST_DATABASE_URL; scripts/bench starts one).
    #[arg(long, default_value = "both")]
    db: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Circles of twelve devices to send into.
    #[arg(long, default_value_t = 20)]
    circles: usize,
    /// Concurrent senders (and concurrent writers), comma-separated.
    #[arg(long, default_value = "1,8,32")]
    concurrency: String,
}

/// A device that may send into a circle.
#[derive(Clone)]
struct Sender {
    circle: CircleId,
    token: String,
}

/// Circles of a facilitator and eleven members, set up through the API.
async fn circles(app: &TestApp, count: usize) -> Result<Vec<Sender>> {
    let mut senders = Vec::new();
    for _ in 0..count {
        let (_, facilitator) = app.signed_in().await?;
        let circle = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
        let created = app
            .post_json(
                "/v1/circles",
                &facilitator.access_token,
                &serde_json::json!({ "circle_id": circle }),
            )
            .await?;
        if created.status() != 201 {
            bail!("creating a circle: {}", created.status());
        }
        let mut members = Vec::new();
        for _ in 0..11 {
            members.push(app.signed_in().await?);
        }
        let bundle = CommitBundle {
            epoch: 0,
            commit: Base64Bytes::from(rand_bytes::<256>().to_vec()),
            welcome: Some(Base64Bytes::from(rand_bytes::<1024>().to_vec())),
            group_info: None,
            added: members.iter().map(|(d, _)| d.device_id).collect(),
            removed: Vec::new(),
            join_request_id: None,
        };
        let path = format!("/v1/circles/{circle}/commits");
        let added = app
            .post_json(&path, &facilitator.access_token, &bundle)
            .await?;
        if added.status() != 201 {
            bail!("adding members: {}", added.status());
        }
        senders.push(Sender {
            circle: circle.clone(),
            token: facilitator.access_token,
        });
        senders.extend(members.into_iter().map(|(_, tokens)| Sender {
            circle: circle.clone(),
            token: tokens.access_token,
        }));
    }
    Ok(senders)
}

/// Sends per second with `concurrency` senders for `seconds`.
async fn sends(app: &TestApp, senders: &[Sender], concurrency: usize, seconds: u64) -> Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let done = Arc::new(AtomicU64::new(0));
    let ciphertext = Base64Bytes::from(rand_bytes::<1024>().to_vec());
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (http, base, done) = (app.http.clone(), app.address.clone(), done.clone());
        let (senders, ciphertext) = (senders.to_vec(), ciphertext.clone());
        tasks.push(tokio::spawn(async move {
            let mut next = worker;
            while Instant::now() < deadline {
                let sender = &senders[next % senders.len()];
                next += concurrency;
                let body = SendMessage {
                    message_id: uuid::Uuid::new_v4(),
                    epoch: 1,
                    ciphertext: ciphertext.clone(),
                };
                let answer = http
                    .post(format!("{base}/v1/circles/{}/messages", sender.circle))
                    .bearer_auth(&sender.token)
                    .json(&body)
                    .send()
                    .await?;
                if answer.status() != 201 {
                    bail!("a send was refused: {}", answer.status());
                }
                let _: Accepted = answer.json().await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

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
async fn commits(db: &TestDb, concurrency: usize, seconds: u64) -> Result<f64> {
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

async fn run(db: Db, args: &Args, levels: &[usize]) -> Result<()> {
    let app = TestApp::spawn_with(db, |c| {
        c.workers = None;
        c.database_max_connections = 32;
    })
    .await?;
    let senders = circles(&app, args.circles).await?;
    let name = match db {
        Db::Sqlite => "SQLite",
        Db::Postgres => "PostgreSQL",
    };
    for &concurrency in levels {
        let sent = sends(&app, &senders, concurrency, args.seconds).await?;
        let committed = commits(&app.db, concurrency, args.seconds).await?;
        println!(
            "| {name} | {concurrency} | {sent:.0} | {committed:.0} | {:.2} |",
            sent / committed.max(1.0)
        );
    }
    app.stop().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let levels: Vec<usize> = args
        .concurrency
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .context("--concurrency: numbers, comma-separated")
        })
        .collect::<Result<_>>()?;
    let dbs = match args.db.as_str() {
        "sqlite" => vec![Db::Sqlite],
        "postgres" => vec![Db::Postgres],
        "both" => vec![Db::Sqlite, Db::Postgres],
        other => bail!("--db sqlite, postgres or both, not {other:?}"),
    };
    println!(
        "{} circles of 12, 1 KiB ciphertext, {} s per figure, {} cores",
        args.circles,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| database | concurrent | Hearth sends/s | durable single-row commits/s | ratio |");
    println!("|---|---|---|---|---|");
    for db in dbs {
        run(db, &args, &levels).await?;
    }
    Ok(())
}
