//! Upgrades while serving: a node of the previous release and a node of
//! this one on one database while this release's migrations run, and the
//! rule that makes that safe — a migration only adds (tables, columns that
//! may be null or have a default, indexes): nothing an older release reads
//! or writes is dropped, renamed or retyped, and a node starts on a
//! database a newer release migrated.

use anyhow::{Context as _, Result, bail, ensure};
use hearth_client::Client;
use hearth_tests::clients::{data_dirs, join, texts};
use hearth_tests::process::ServerProcess;
use hearth_tests::{Db, TestApp, TestDb, b64, on_both_databases, on_postgres, rand_bytes};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

on_both_databases!(a_node_starts_on_a_database_a_newer_release_migrated);
on_postgres!(a_rolling_upgrade_from_the_previous_release_loses_nothing);

/// The first migration the additive rule holds for (earlier ones were
/// written before it).
const RULE_SINCE: u32 = 8;

/// Every migration since the rule only adds: no `DROP`, no `RENAME`, no
/// `ALTER COLUMN` (type, nullability), and a column added `NOT NULL` has a
/// default — so statements of the previous release stay valid while, and
/// after, this one migrates.
#[test]
fn every_migration_only_adds() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/migrations");
    let mut checked = 0;
    for kind in ["sqlite", "postgres"] {
        for entry in std::fs::read_dir(root.join(kind))? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .context("a migration's name")?
                .to_owned();
            let version: u32 = name
                .split('_')
                .next()
                .and_then(|v| v.parse().ok())
                .context("a migration's number")?;
            if version < RULE_SINCE {
                continue;
            }
            let sql: String = std::fs::read_to_string(&path)?
                .lines()
                .map(|l| l.split("--").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase();
            for statement in sql.split(';') {
                let words: Vec<&str> = statement.split_whitespace().collect();
                let text = words.join(" ");
                for forbidden in [
                    "DROP ",
                    "RENAME ",
                    "ALTER COLUMN",
                    "SET NOT NULL",
                    "TRUNCATE ",
                ] {
                    ensure!(
                        !text.contains(forbidden),
                        "{kind}/{name}: `{forbidden}` breaks the additive rule: {text}"
                    );
                }
                if text.contains("ADD COLUMN") && text.contains("NOT NULL") {
                    ensure!(
                        text.contains("DEFAULT"),
                        "{kind}/{name}: a column added NOT NULL needs a default: {text}"
                    );
                }
            }
            checked += 1;
        }
    }
    ensure!(checked >= 2, "no migration since the rule was checked");
    Ok(())
}

/// A newer release migrated the database (its table, its row in sqlx's
/// record of migrations) — then this release's node starts on it, as a
/// node of the older release does during a rolling upgrade or after a step
/// back, and serves.
async fn a_node_starts_on_a_database_a_newer_release_migrated(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let seed = app.signing_seed;
    let test_db = app.stop().await?;
    let newer = [
        "CREATE TABLE later_feature (id BIGINT PRIMARY KEY)",
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'later feature', TRUE, X'00', 1)",
    ];
    match &test_db {
        TestDb::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(
                dir.path()
                    .join(hearth_server::storage::sqlite::DATABASE_FILE),
            )?;
            for statement in newer {
                conn.execute(statement, [])?;
            }
        }
        TestDb::Postgres(url) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
            for statement in newer {
                let statement = statement.replace("X'00'", "'\\x00'::bytea");
                sqlx::query(sqlx::AssertSqlSafe(statement))
                    .execute(&mut conn)
                    .await?;
            }
        }
    }
    let app = TestApp::start(test_db, |config| {
        config.auth.signing_key = Some(secrecy::SecretString::from(b64(&seed)));
    })
    .await?;
    let (circle, tokens) = app.opaque_circle(1).await?;
    let answer = app
        .get(&format!("/v1/circles/{circle}"), &tokens[1])
        .await?;
    assert_eq!(answer.status(), 200, "it serves");
    app.stop().await?;
    Ok(())
}

/// The previous release's binary (`scripts/previous-release` builds it and
/// `scripts/test` passes it on), or `None` outside CI.
fn previous_server() -> Result<Option<std::path::PathBuf>> {
    match std::env::var("TEST_PREVIOUS_SERVER") {
        Ok(path) => Ok(Some(path.into())),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            bail!("CI=true but TEST_PREVIOUS_SERVER is not set (scripts/test builds it)")
        }
        Err(_) => {
            eprintln!(
                "SKIPPED the rolling upgrade: run scripts/test, which builds the previous release"
            );
            Ok(None)
        }
    }
}

/// A rolling upgrade on PostgreSQL. A node of the previous release serves
/// Anna and Sam (this release's SDK), who talk. A node of this release
/// starts on the same database and applies this release's migrations while
/// Anna keeps sending through the old node: every send is answered. Then
/// Sam moves to the new node: he reads everything Anna sent, once and in
/// order, including what she sends through the old node afterwards; Anna,
/// still on the old node, reads Sam's reply sent through the new one. The
/// old node stops cleanly.
async fn a_rolling_upgrade_from_the_previous_release_loses_nothing(db: Db) -> Result<()> {
    let Some(previous) = previous_server()? else {
        return Ok(());
    };
    let test_db = TestDb::create(db).await?;
    let seed = rand_bytes::<32>();
    let old = ServerProcess::start_binary(&previous, &test_db, &seed, &[]).await?;
    let dirs = data_dirs(2)?;
    let anna = Arc::new(Client::open(&old.address, dirs[0].path()).await?);
    let sam = Client::open(&old.address, dirs[1].path()).await?;
    anna.register(None).await?;
    sam.register(None).await?;
    let circle = anna.create_circle().await?;
    join(&anna, &sam, &circle).await?;
    anna.send_text(&circle, "before the upgrade").await?;

    // Anna keeps sending through the old node while the new one migrates.
    let sending = Arc::new(AtomicBool::new(true));
    let sender = {
        let (anna, circle, sending) = (anna.clone(), circle.clone(), sending.clone());
        tokio::spawn(async move {
            let mut sent = Vec::new();
            while sending.load(Ordering::SeqCst) {
                let text = format!("during the upgrade {}", sent.len());
                anna.send_text(&circle, &text).await?;
                sent.push(text);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(sent)
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = ServerProcess::start(&test_db, &seed).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    sending.store(false, Ordering::SeqCst);
    let during = sender.await??;
    ensure!(!during.is_empty(), "Anna sent while the new node migrated");

    drop(sam);
    let sam = Client::open(&new.address, dirs[1].path()).await?;
    anna.send_text(&circle, "after the upgrade").await?;
    sam.sync(&circle).await?;
    let mut expected = vec!["before the upgrade".to_owned()];
    expected.extend(during);
    expected.push("after the upgrade".to_owned());
    assert_eq!(texts(&sam.history(&circle).await?), expected);
    sam.send_text(&circle, "through the new node").await?;
    anna.sync(&circle).await?;
    let annas = texts(&anna.history(&circle).await?);
    assert_eq!(
        annas.last().map(String::as_str),
        Some("through the new node"),
        "across the versions"
    );
    assert_eq!(
        annas
            .iter()
            .filter(|t| *t == "through the new node")
            .count(),
        1
    );
    old.stop().await?;
    new.stop().await?;
    Ok(())
}
