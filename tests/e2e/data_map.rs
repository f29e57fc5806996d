//! The data map (`docs/DATA.md`) against the live schema of both databases:
//! every table and column the migrations create is described there, and
//! nothing described is missing. A column added without a line in the map
//! fails here: the map is the allowlist of what the server may store.

use anyhow::{Result, bail};
use hearth_tests::{Db, TestApp, TestDb, on_both_databases};
use std::collections::BTreeSet;

on_both_databases!(the_data_map_describes_every_column_there_is);

/// `table.column` for every column the map describes.
fn described() -> Result<BTreeSet<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DATA.md");
    let text = std::fs::read_to_string(path)?;
    let mut table = None;
    let mut columns = BTreeSet::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("### `") {
            table = name.strip_suffix('`').map(str::to_owned);
        } else if let (Some(table), Some(rest)) = (&table, line.strip_prefix("| `")) {
            let Some((column, _)) = rest.split_once("` |") else {
                bail!("a malformed row under {table}: {line}");
            };
            columns.insert(format!("{table}.{column}"));
        }
    }
    Ok(columns)
}

/// `table.column` for every column of the database.
async fn live(db: &TestDb) -> Result<BTreeSet<String>> {
    let mut columns = BTreeSet::new();
    match db {
        TestDb::Sqlite(dir) => {
            let path = dir
                .path()
                .join(hearth_server::storage::sqlite::DATABASE_FILE);
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .read_only(true);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&pool)
            .await?;
            columns.extend(rows.into_iter().map(|(t, c)| format!("{t}.{c}")));
            pool.close().await;
        }
        TestDb::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await?;
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public'",
            )
            .fetch_all(&pool)
            .await?;
            columns.extend(rows.into_iter().map(|(t, c)| format!("{t}.{c}")));
            pool.close().await;
        }
    }
    Ok(columns)
}

async fn the_data_map_describes_every_column_there_is(db: Db) -> Result<()> {
    // The server migrates its database on start; the map is read after.
    let app = TestApp::spawn(db).await?;
    let test_db = app.stop().await?;
    let live = live(&test_db).await?;
    let described = described()?;
    let undescribed: Vec<_> = live.difference(&described).collect();
    let gone: Vec<_> = described.difference(&live).collect();
    assert!(
        undescribed.is_empty(),
        "columns the data map does not describe (add them to docs/DATA.md): {undescribed:?}"
    );
    assert!(
        gone.is_empty(),
        "the data map describes columns that do not exist: {gone:?}"
    );
    assert!(
        live.len() > 80,
        "the schema was read: {} columns",
        live.len()
    );
    Ok(())
}
