//! The storage conformance suite: every method of every storage area
//! (`hearth_server::storage`), with the same expectations on SQLite and on
//! PostgreSQL. `every_storage_method_is_exercised` keeps it that way.

mod circles;
mod enrollment;
mod facilitators;
mod identity;
mod key_packages;
mod operations;
mod push;
mod snapshots;

use anyhow::Result;
use hearth_protocol::{AccountId, CircleId, DeviceId};
use hearth_server::crypto::{new_account_id, new_device_id, random_uuid};
use hearth_server::storage::{LoginId, NewCircle, NewDevice, NewRefreshToken, Storage};
use hearth_tests::{Db, TestDb, rand_bytes};
use std::sync::Arc;

/// The time the scenarios live at (storage has no clock of its own).
const NOW: i64 = 1_800_000_000;

async fn open(db: Db) -> Result<(TestDb, Arc<dyn Storage>)> {
    let test_db = TestDb::create(db).await?;
    let storage = test_db.storage().await?;
    Ok((test_db, storage))
}

fn new_device() -> NewDevice {
    NewDevice {
        id: new_device_id().unwrap(),
        public_key: rand_bytes(),
        created_at: NOW,
    }
}

async fn account_with_device(storage: &dyn Storage) -> Result<(AccountId, NewDevice)> {
    let account = new_account_id()?;
    let device = new_device();
    storage.create_account(account, &device).await?;
    Ok((account, device))
}

/// A registered device's id.
async fn device(storage: &dyn Storage) -> Result<DeviceId> {
    Ok(account_with_device(storage).await?.1.id)
}

async fn login_for(storage: &dyn Storage, device: DeviceId) -> Result<(LoginId, [u8; 32])> {
    let login = LoginId(random_uuid()?);
    let token = rand_bytes::<32>();
    storage
        .create_login(
            login,
            device,
            NOW,
            &NewRefreshToken {
                hash: token,
                expires_at: NOW + 3600,
            },
        )
        .await?;
    Ok((login, token))
}

/// A new circle (12 members, a day's retention) that `creator` facilitates.
async fn circle_of(storage: &dyn Storage, creator: DeviceId) -> Result<CircleId> {
    let id = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    let circle = NewCircle {
        id: id.clone(),
        max_members: 12,
        retention_secs: 24 * 3600,
        group_info: Some(b"group info at epoch 0".to_vec()),
        created_at: NOW,
    };
    storage.create_circle(&circle, creator).await?;
    Ok(id)
}

#[tokio::test]
async fn sqlite_runs_durable_and_forgetful() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let storage = hearth_server::storage::sqlite::SqliteStorage::open(dir.path()).await?;
    let (journal, synchronous, secure_delete, foreign_keys) = storage.pragmas().await?;
    assert_eq!(journal, "wal");
    assert_eq!(synchronous, 2, "synchronous=FULL");
    assert_eq!(secure_delete, 1, "deleted rows are overwritten");
    assert_eq!(foreign_keys, 1);
    Ok(())
}

/// Reads every storage area's trait from the server's source and checks that
/// this suite calls each of its methods: a method added without a scenario
/// fails here.
#[test]
fn every_storage_method_is_exercised() -> Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite: String = [
        "mod",
        "identity",
        "key_packages",
        "circles",
        "enrollment",
        "operations",
        "snapshots",
        "push",
        "facilitators",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(root.join(format!("e2e/storage/{f}.rs"))))
    .collect::<Result<_, _>>()?;
    let mut methods = Vec::new();
    for area in [
        "operations",
        "identity",
        "key_packages",
        "circles",
        "enrollment",
        "snapshots",
        "push",
        "facilitators",
    ] {
        let source =
            std::fs::read_to_string(root.join(format!("../server/src/storage/{area}.rs")))?;
        let start = source
            .find("pub trait ")
            .ok_or_else(|| anyhow::anyhow!("no trait in {area}.rs"))?;
        let end = start
            + source[start..]
                .find("\n}\n")
                .ok_or_else(|| anyhow::anyhow!("unterminated trait in {area}.rs"))?;
        for line in source[start..end].lines() {
            let line = line.trim_start();
            if let Some(rest) = line
                .strip_prefix("async fn ")
                .or_else(|| line.strip_prefix("fn "))
            {
                let name: String = rest
                    .chars()
                    .take_while(|c| *c == '_' || c.is_alphanumeric())
                    .collect();
                methods.push(name);
            }
        }
    }
    assert!(methods.len() > 40, "found the traits: {methods:?}");
    let missing: Vec<_> = methods
        .iter()
        .filter(|m| !suite.contains(&format!(".{m}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "storage methods no scenario calls: {missing:?}"
    );
    Ok(())
}
