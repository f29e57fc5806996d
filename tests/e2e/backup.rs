//! Backups that restore: the operator's online backup, a restore into a
//! fresh data directory, and clients that carry on from their cursors
//! without skipping a message and are told what happened.

use anyhow::{Context as _, Result, ensure};
use hearth_client::{Client, Event};
use hearth_tests::clients::{data_dirs, enrolled, texts};
use hearth_tests::process::{admin, server_binary};
use hearth_tests::{Db, TestApp, TestDb, b64, on_both_databases};
use std::sync::{Arc, Mutex};
use std::time::Instant;

on_both_databases!(a_restore_by_other_means_is_declared_with_admin_restored);

/// Messages Anna sends in all; the backup is made while they go.
const LOAD: usize = 150;

/// The restore drill, on SQLite. Anna sends 150 messages one after another
/// while the operator runs `hearth-server admin backup` (the real binary,
/// beside the running server). Sam reads to the very end; Lee last read
/// before the backup. The server stops; the backup goes into a fresh data
/// directory and a server starts on it. Every message acknowledged before
/// the backup began is there, in order. Anna sends five more: Sam, whose
/// cursor is past the restored log, gets every one of them (no number he
/// has seen is given again), and everyone is told once that the server was
/// restored; Lee reads what survived and the new ones, in order, once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_made_under_load_restores_and_no_client_skips_a_message() -> Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let seed = app.signing_seed;
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [anna, sam, lee]: [Client; 3] = clients.try_into().ok().context("three clients")?;
    let TestDb::Sqlite(data) = &app.db else {
        anyhow::bail!("the drill runs on SQLite");
    };
    let backups = tempfile::tempdir()?;
    let backup = backups.path().join("hearth-backup.db");

    // Anna sends; each answered send is noted with when it was answered.
    let answered: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sender = {
        let (anna, circle, answered) = (anna, circle.clone(), answered.clone());
        tokio::spawn(async move {
            for n in 0..LOAD {
                let text = format!("before the restore {n}");
                anna.send_text(&circle, &text).await?;
                answered
                    .lock()
                    .expect("answers")
                    .push((text, Instant::now()));
            }
            anyhow::Ok(anna)
        })
    };
    while answered.lock().expect("answers").len() < LOAD / 3 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let backup_began = Instant::now();
    let made = tokio::process::Command::new(server_binary()?)
        .args(["admin", "backup"])
        .arg(&backup)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HEARTH_DATA_DIR", data.path())
        .output()
        .await?;
    ensure!(
        made.status.success(),
        "admin backup failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let anna = sender.await??;
    let before_backup: Vec<String> = answered
        .lock()
        .expect("answers")
        .iter()
        .filter(|(_, at)| *at < backup_began)
        .map(|(text, _)| text.clone())
        .collect();
    let all_sent: Vec<String> = (0..LOAD)
        .map(|n| format!("before the restore {n}"))
        .collect();
    assert_eq!(
        texts(&sam.sync(&circle).await?).len(),
        LOAD,
        "Sam read to the end"
    );

    drop((anna, sam, lee));
    app.stop().await?;
    let restored = tempfile::tempdir()?;
    std::fs::copy(
        &backup,
        restored
            .path()
            .join(hearth_server::storage::sqlite::DATABASE_FILE),
    )?;
    let app = TestApp::start(TestDb::Sqlite(restored), |config| {
        config.auth.signing_key = Some(secrecy::SecretString::from(b64(&seed)));
    })
    .await?;
    let anna = Client::open(&app.address, dirs[0].path()).await?;
    let sam = Client::open(&app.address, dirs[1].path()).await?;
    let lee = Client::open(&app.address, dirs[2].path()).await?;

    let after: Vec<String> = (0..5).map(|n| format!("after the restore {n}")).collect();
    for text in &after {
        anna.send_text(&circle, text).await?;
    }
    let synced = sam.sync_all().await?;
    assert!(synced.restored, "Sam is told the server was restored");
    assert!(sam.take_notices().contains(&Event::Restored));
    let sams_new: Vec<String> = synced
        .messages
        .iter()
        .flat_map(|(_, messages)| texts(messages))
        .collect();
    assert_eq!(sams_new, after, "Sam skips none of the new messages");

    let synced = lee.sync_all().await?;
    assert!(synced.restored, "Lee is told too");
    let lees = texts(&lee.history(&circle).await?);
    let (survived, new) = lees.split_at(lees.len() - after.len().min(lees.len()));
    assert_eq!(new, after, "Lee reads the new messages after what survived");
    assert_eq!(
        survived,
        &all_sent[..survived.len()],
        "what survived is the start of what was sent, in order, once"
    );
    assert!(
        survived.len() >= before_backup.len(),
        "every message acknowledged before the backup began survived ({} of {})",
        survived.len(),
        before_backup.len()
    );
    assert!(
        survived.len() < LOAD,
        "the backup was made under load: some messages came after it"
    );
    assert!(anna.sync_all().await?.restored, "and Anna");
    app.stop().await?;
    Ok(())
}

/// A database restored by other means than a marked backup (a file copy,
/// `sqlite3 .backup`, `pg_restore`): the operator runs `hearth-server admin
/// restored` before starting the server. The log has a new generation, the
/// next message's number jumps past anything handed out before, and a
/// client's sync carries the new name. On PostgreSQL `admin backup` says to
/// use `pg_dump` instead, and changes nothing.
async fn a_restore_by_other_means_is_declared_with_admin_restored(db: Db) -> Result<()> {
    use hearth_protocol::Base64Bytes;
    use hearth_protocol::circles::{Accepted, SendMessage};
    let app = TestApp::spawn(db).await?;
    let seed = app.signing_seed;
    let (circle, tokens) = app.opaque_circle(1).await?;
    let before = generation_of(&app, &tokens[1]).await?;
    ensure!(before.len() == 32, "a generation is named: {before:?}");
    let db = app.stop().await?;

    if let TestDb::Postgres(_) = db {
        let refused = admin(&db, &["backup", "/nonexistent/backup.db"]).await?;
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("pg_dump"));
    }
    let declared = admin(&db, &["restored"]).await?;
    ensure!(
        declared.status.success(),
        "admin restored: {}",
        String::from_utf8_lossy(&declared.stderr)
    );
    assert!(String::from_utf8_lossy(&declared.stdout).contains("restore 1"));

    let app = TestApp::start(db, |config| {
        config.auth.signing_key = Some(secrecy::SecretString::from(b64(&seed)));
    })
    .await?;
    let after = generation_of(&app, &tokens[1]).await?;
    assert_ne!(after, before, "a new generation");
    let body = SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch: 1,
        ciphertext: Base64Bytes::from(hearth_tests::opaque_message(&circle, 1, b"m")),
    };
    let answer = app
        .post_json(&format!("/v1/circles/{circle}/messages"), &tokens[0], &body)
        .await?;
    ensure!(answer.status() == 201, "send: {}", answer.status());
    let seq = answer.json::<Accepted>().await?.seq;
    assert!(
        seq > 1 << 32,
        "the next number jumps past every number handed out before ({seq})"
    );
    app.stop().await?;
    Ok(())
}

/// The log generation a device's sync is told.
async fn generation_of(app: &TestApp, token: &str) -> Result<String> {
    let body = serde_json::json!({ "cursors": [], "welcomes_done": [] });
    let answer = app.post_json("/v1/sync", token, &body).await?;
    ensure!(answer.status() == 200, "sync: {}", answer.status());
    Ok(answer
        .json::<hearth_protocol::sync::SyncResponse>()
        .await?
        .generation)
}
