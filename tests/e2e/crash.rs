//! Acknowledged means durable, also under group commit: the real server
//! binary takes a load of concurrent sends, is killed with `SIGKILL` at a
//! random moment in the middle of its batches, restarts on the same data,
//! and again, several times. Every send that was answered 2xx is in the log
//! exactly once, at the number it was given, the log has no gaps, and the
//! database passes its own integrity check. Sends whose answers were lost
//! to a kill are sent again with the same id: the server answers each with
//! the number it already gave, or appends it now — never twice.

use anyhow::{Context as _, Result, bail, ensure};
use hearth_protocol::circles::{Accepted, LogPage, SendMessage};
use hearth_protocol::{Base64Bytes, CircleId};
use hearth_tests::process::ServerProcess;
use hearth_tests::{TestApp, TestDb, on_both_databases, rand_bytes};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

on_both_databases!(every_acknowledged_send_survives_sigkill_once_in_order_without_gaps);

/// Kills per database.
const KILLS: usize = 5;

/// How many kills: `CRASH_KILLS` for a longer run (README), else [`KILLS`].
fn kills() -> usize {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KILLS)
}
/// Concurrent senders.
const SENDERS: usize = 8;

/// A send: who, its id, its bytes (the id, then padding: the same id
/// always carries the same bytes, as a client's retry does).
#[derive(Clone)]
struct Send {
    token: Arc<str>,
    id: Uuid,
}

impl Send {
    /// A framed application message whose ciphertext is the id, then
    /// padding to the smallest bucket.
    fn ciphertext(&self, circle: &CircleId) -> Vec<u8> {
        let mut bytes = self.id.as_bytes().to_vec();
        bytes.resize(hearth_protocol::framing::PAD_MIN, 0x5a);
        hearth_protocol::framing::private_message(
            circle.as_bytes(),
            1,
            hearth_protocol::framing::ContentType::Application,
            &[0x5a; 28],
            &bytes,
        )
    }
}

/// What the senders learned: numbers given, and sends whose answer was lost.
#[derive(Default)]
struct Ledger {
    acknowledged: HashMap<Uuid, u64>,
    unanswered: Vec<Send>,
}

async fn every_acknowledged_send_survives_sigkill_once_in_order_without_gaps(
    app: TestApp,
) -> Result<()> {
    // A facilitator and three members, set up on an in-process server.
    let (circle, tokens) = app.opaque_circle(3).await?;
    let tokens: Vec<Arc<str>> = tokens.into_iter().map(Arc::from).collect();
    let seed = app.signing_seed;
    let db = app.stop().await?;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let kills = kills();
    for _ in 0..kills {
        let server = ServerProcess::start(&db, &seed).await?;
        let senders = load(&http, &server.address, &circle, &tokens, &ledger);
        let pause = 150 + u64::from(u16::from_le_bytes(rand_bytes::<2>())) % 500;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill().await?;
        for sender in senders {
            sender.await??;
        }
    }

    // After the last restart, every unanswered send goes again, and is
    // answered: with the number it was given before the kill, or a new one.
    let server = ServerProcess::start(&db, &seed).await?;
    let unanswered = std::mem::take(&mut lock(&ledger).unanswered);
    ensure!(
        !unanswered.is_empty(),
        "no kill caught a send in flight: the test proved nothing"
    );
    for send in unanswered {
        match post(&http, &server.address, &circle, &send).await? {
            Some(seq) => {
                lock(&ledger).acknowledged.insert(send.id, seq);
            }
            None => bail!("a resend failed on a running server"),
        }
    }
    let log = read_log(&http, &server.address, &circle, &tokens[0]).await?;
    server.stop().await?;

    let acknowledged = std::mem::take(&mut lock(&ledger).acknowledged);
    ensure!(
        acknowledged.len() > kills * SENDERS,
        "the load was too light to prove anything ({} sends)",
        acknowledged.len()
    );
    let seqs: Vec<u64> = log.keys().copied().collect();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "the log has no gaps");
    let mut by_id: HashMap<Uuid, u64> = HashMap::new();
    for (seq, bytes) in log.iter().skip(1) {
        let ciphertext = hearth_protocol::framing::private_ciphertext(bytes)
            .context("a log entry is not the framed message that was sent")?;
        let id = Uuid::from_slice(&ciphertext[..16])?;
        assert!(
            by_id.insert(id, *seq).is_none(),
            "a message is in the log twice"
        );
    }
    assert_eq!(
        by_id, acknowledged,
        "every acknowledged send is in the log at the number it was given, and nothing else is"
    );
    integrity(&db).await
}

/// Starts the senders; each sends until the server goes away, first what is
/// still unanswered, then new messages.
fn load(
    http: &reqwest::Client,
    address: &str,
    circle: &CircleId,
    tokens: &[Arc<str>],
    ledger: &Arc<Mutex<Ledger>>,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    (0..SENDERS)
        .map(|n| {
            let (http, address, circle) = (http.clone(), address.to_owned(), circle.clone());
            let (token, ledger) = (tokens[n % tokens.len()].clone(), ledger.clone());
            tokio::spawn(async move {
                loop {
                    let retry = lock(&ledger).unanswered.pop();
                    let send = match retry {
                        Some(send) => send,
                        None => Send {
                            token: token.clone(),
                            id: Uuid::new_v4(),
                        },
                    };
                    match post(&http, &address, &circle, &send).await? {
                        Some(seq) => {
                            lock(&ledger).acknowledged.insert(send.id, seq);
                        }
                        None => {
                            lock(&ledger).unanswered.push(send);
                            return Ok(());
                        }
                    }
                }
            })
        })
        .collect()
}

/// The number a send was given, or `None` when no answer came (the server
/// died first). Any answer other than 2xx fails the test.
async fn post(
    http: &reqwest::Client,
    address: &str,
    circle: &CircleId,
    send: &Send,
) -> Result<Option<u64>> {
    let body = SendMessage {
        message_id: send.id,
        epoch: 1,
        ciphertext: Base64Bytes::from(send.ciphertext(circle)),
    };
    let answer = http
        .post(format!("{address}/v1/circles/{circle}/messages"))
        .bearer_auth(&*send.token)
        .json(&body)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(_) => return Ok(None),
    };
    let status = answer.status();
    if !status.is_success() {
        bail!("a send was refused: {status}");
    }
    match answer.json::<Accepted>().await {
        Ok(accepted) => Ok(Some(accepted.seq)),
        // The body was cut off by the kill: the answer never fully came.
        Err(_) => Ok(None),
    }
}

/// The whole log as the facilitator reads it: seq → ciphertext.
async fn read_log(
    http: &reqwest::Client,
    address: &str,
    circle: &CircleId,
    token: &str,
) -> Result<BTreeMap<u64, Vec<u8>>> {
    let mut log = BTreeMap::new();
    let mut after = 0;
    loop {
        let page: LogPage = http
            .get(format!(
                "{address}/v1/circles/{circle}/messages?after={after}&limit=500"
            ))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for entry in page.entries {
            ensure!(
                log.insert(entry.seq, entry.ciphertext.into_inner())
                    .is_none(),
                "a number was read twice"
            );
        }
        after = page.next_after;
        if !page.more {
            return Ok(log);
        }
    }
}

/// The database's own verdict on its files and indexes.
async fn integrity(db: &TestDb) -> Result<()> {
    match db {
        TestDb::Sqlite(dir) => {
            let path = dir
                .path()
                .join(hearth_server::storage::sqlite::DATABASE_FILE);
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_all(&pool)
                .await?;
            pool.close().await;
            assert_eq!(verdict, ["ok"], "SQLite's integrity check");
        }
        TestDb::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS amcheck")
                .execute(&pool)
                .await?;
            // Every B-tree index of our tables, with its heap: each entry
            // points at a row that exists, and each row is indexed.
            let indexes: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::text FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_am a ON a.oid = c.relam \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE a.amname = 'btree' AND n.nspname = 'public'",
            )
            .fetch_all(&pool)
            .await?;
            ensure!(
                indexes.iter().any(|name| name.starts_with("log_entries")),
                "amcheck would look at no index of the log"
            );
            for index in &indexes {
                sqlx::query("SELECT bt_index_check($1::text::regclass, true)::text")
                    .bind(index)
                    .fetch_one(&pool)
                    .await?;
            }
            pool.close().await;
        }
    }
    Ok(())
}

fn lock(ledger: &Mutex<Ledger>) -> std::sync::MutexGuard<'_, Ledger> {
    ledger
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
