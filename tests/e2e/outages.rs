//! When things break under a running server: a full disk. (PostgreSQL
//! restarting is in `stream.rs` and the storage scenarios, through a link
//! the test cuts.)

use anyhow::{Context as _, Result, bail, ensure};
use hearth_client::{Client, ClientError};
use hearth_protocol::ErrorCode;
use hearth_protocol::content::Content;
use hearth_tests::clients::{data_dirs, join};
use hearth_tests::process::ServerProcess;
use hearth_tests::{Db, TestDb, rand_bytes};
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;

/// The server's own disk: 8 MiB, of which the database takes a few hundred
/// KiB and a ballast file the rest.
const DISK: u64 = 8 << 20;

/// The disk fills under a running server (SQLite on a small disk of its own;
/// a ballast file takes the rest). Every SDK request first refreshes the
/// device's access token (it lives 30 s, less than the SDK's margin), so
/// refreshes are tried all along. Anna keeps sending until a send is
/// refused: each refusal is `507 storage_full` with `Retry-After`, never
/// `500`, and the message waits in her outbox; `/readyz` says the database is
/// full. Sam's acknowledgement, Anna's commit and Kit's registration are
/// refused the same way, or go through. Room is made and nothing is
/// restarted: Anna's outbox goes out, her commit and Kit's registration go
/// through, Sam reads every message once and in order, `/readyz` is ready
/// again, and the database passes its integrity check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_named_and_the_server_recovers_by_itself_once_room_is_made() -> Result<()> {
    let db = TestDb::create(Db::Sqlite).await?;
    let settings = [(
        "HEARTH_AUTH__ACCESS_TOKEN_TTL_SECS".to_owned(),
        "30".to_owned(),
    )];
    let server =
        ServerProcess::start_on_small_disk(&db, &rand_bytes::<32>(), &settings, DISK).await?;
    let disk = server.small_disk().context("the server's disk")?;
    let http = reqwest::Client::new();
    let readyz = || async {
        let answer = http
            .get(format!("{}/readyz", server.address))
            .send()
            .await?;
        let status = answer.status().as_u16();
        let body: Value = answer.json().await?;
        Ok::<_, anyhow::Error>((status, body["database"].as_str().unwrap_or("").to_owned()))
    };
    let dirs = data_dirs(3)?;
    let anna = Client::open(&server.address, dirs[0].path()).await?;
    let sam = Client::open(&server.address, dirs[1].path()).await?;
    let kit = Client::open(&server.address, dirs[2].path()).await?;
    anna.register(None).await?;
    sam.register(None).await?;
    let circle = anna.create_circle().await?;
    join(&anna, &sam, &circle).await?;
    anna.send_text(&circle, "before the disk filled").await?;
    let mut expected = vec!["before the disk filled".to_owned()];

    let ballast = disk.join("ballast");
    let filled = fill(&ballast)?;
    ensure!(filled > DISK / 2, "the ballast took {filled} bytes");

    let mut refused = None;
    for n in 0..300 {
        let text = format!("while the disk was full {n}");
        match anna.send_text(&circle, &text).await {
            Ok(_) => expected.push(text),
            Err(err) => {
                full(&err, "a send")?;
                expected.push(text);
                refused = Some(n);
                break;
            }
        }
    }
    let refused = refused.context("no send was refused on a full disk")?;
    assert_eq!(anna.outbox().await?.len(), 1, "the refused message waits");
    assert_eq!(
        readyz().await?,
        (503, "full".to_owned()),
        "/readyz names it"
    );
    // Reading Sam's messages acknowledges them; Anna commits; Kit signs up.
    if let Err(err) = sam.sync(&circle).await {
        full(&err, "an acknowledgement")?;
    }
    if let Err(err) = anna.update(&circle).await {
        full(&err, "a commit")?;
    }
    if let Err(err) = kit.register(None).await {
        full(&err, "a registration")?;
    }

    std::fs::remove_file(&ballast)?;
    assert_eq!(anna.flush_outbox().await?, 1, "the outbox goes out");
    anna.update(&circle).await?;
    kit.register(None).await?;
    sam.sync(&circle).await?;
    let texts: Vec<String> = sam
        .history(&circle)
        .await?
        .iter()
        .filter_map(|m| match &m.envelope.content {
            Content::Text { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts, expected,
        "every message once, in order ({refused} went before the refusal)"
    );
    assert_eq!(readyz().await?, (200, "ok".to_owned()));

    integrity(&server, &disk)?;
    server.stop().await
}

/// Whether `err` is the server saying its storage is full.
fn full(err: &ClientError, what: &str) -> Result<()> {
    match err {
        ClientError::Api { status: 507, body } if body.code == ErrorCode::StorageFull => Ok(()),
        other => bail!("{what} on a full disk: expected 507 storage_full, got {other:?}"),
    }
}

/// Writes `path` until the disk has no room left; its size.
fn fill(path: &Path) -> Result<u64> {
    let mut file = std::fs::File::create(path)?;
    let mut written = 0;
    for chunk in [1 << 20, 4096, 512] {
        let bytes = vec![0x5a_u8; chunk];
        loop {
            match file.write_all(&bytes) {
                Ok(()) => written += chunk as u64,
                Err(err) if err.kind() == std::io::ErrorKind::StorageFull => break,
                Err(err) => return Err(err.into()),
            }
        }
    }
    // What fitted of the last chunk is on disk too.
    let _ = file.sync_all();
    Ok(written)
}

/// The database, copied while the server is paused (`SIGSTOP`: no write is
/// half-way through the copy), passes SQLite's integrity check. (SQLite
/// cannot open it through `/proc/<pid>/root`: it resolves that link to `/`.)
fn integrity(server: &ServerProcess, disk: &Path) -> Result<()> {
    let pid = server.pid().context("the server runs")?.to_string();
    let copy = tempfile::tempdir()?;
    let signal = |name: &str| {
        std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .map_err(anyhow::Error::from)
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    bail!("kill {name} failed")
                }
            })
    };
    signal("-STOP")?;
    let copied = (|| {
        for entry in std::fs::read_dir(disk)? {
            let entry = entry?;
            let name = entry.file_name();
            if name
                .to_string_lossy()
                .starts_with(hearth_server::storage::sqlite::DATABASE_FILE)
            {
                std::fs::copy(entry.path(), copy.path().join(&name))?;
            }
        }
        Ok::<_, anyhow::Error>(())
    })();
    signal("-CONT")?;
    copied?;
    let connection = rusqlite::Connection::open(
        copy.path()
            .join(hearth_server::storage::sqlite::DATABASE_FILE),
    )?;
    let verdict: String = connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    assert_eq!(verdict, "ok", "SQLite's integrity check");
    Ok(())
}
