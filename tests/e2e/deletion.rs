//! Deletion, proven: after an account is deleted, a device revoked and the
//! retention of a circle's log runs out, nothing of the deleted rows is left
//! — not in SQLite's files (the database, its write-ahead log and its shared
//! memory, after a checkpoint; `secure_delete` overwrites freed cells) and
//! not in any PostgreSQL row.

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use hearth_protocol::circles::SendMessage;
use hearth_protocol::{Base64Bytes, CircleId};
use hearth_tests::{Db, TestApp, TestDb, hex, on_both_databases, rand_bytes};

on_both_databases!(
    deleted_accounts_revoked_devices_and_expired_entries_leave_no_trace,
    a_circle_everyone_left_goes_with_its_group_info_and_snapshot,
);

async fn send(app: &TestApp, circle: &CircleId, token: &str) -> Result<Vec<u8>> {
    let ciphertext = hearth_tests::opaque_message(circle, 1, &rand_bytes::<16>());
    let body = SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch: 1,
        ciphertext: Base64Bytes::from(ciphertext.clone()),
    };
    let answer = app
        .post_json(&format!("/v1/circles/{circle}/messages"), token, &body)
        .await?;
    if answer.status() != 201 && answer.status() != 200 {
        bail!("sending: {}", answer.status());
    }
    Ok(ciphertext)
}

/// The `sid` of an access token: the login it belongs to.
fn login_of(access_token: &str) -> Result<String> {
    let claims = access_token.split('.').nth(1).context("a JWT")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims)?)?;
    Ok(claims["sid"].as_str().context("a sid")?.to_owned())
}

/// What the database holds, as bytes to search: SQLite's files after a
/// checkpoint, or every PostgreSQL row as text.
async fn everything(db: &TestDb) -> Result<Vec<u8>> {
    match db {
        TestDb::Sqlite(dir) => {
            let path = dir
                .path()
                .join(hearth_server::storage::sqlite::DATABASE_FILE);
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await?;
            pool.close().await;
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(dir.path())? {
                bytes.extend(std::fs::read(entry?.path())?);
            }
            Ok(bytes)
        }
        TestDb::Postgres(_) => Ok(db.dump().await?.join("\n").into_bytes()),
    }
}

async fn deleted_accounts_revoked_devices_and_expired_entries_leave_no_trace(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    // Fay facilitates; Mo will revoke this device; Sol will delete the
    // account.
    let people = vec![
        app.signed_in().await?,
        app.signed_in().await?,
        app.signed_in().await?,
    ];
    let circle = app.opaque_circle_of(&people).await?;
    let [(_, fay), (mo_device, mo), (sol_device, sol)] = &people[..] else {
        bail!("three people")
    };
    let mut gone: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..3 {
        gone.push((
            format!("Sol's message {i}"),
            send(&app, &circle, &sol.access_token).await?,
        ));
        gone.push((
            format!("Mo's message {i}"),
            send(&app, &circle, &mo.access_token).await?,
        ));
        gone.push((
            format!("Fay's message {i}"),
            send(&app, &circle, &fay.access_token).await?,
        ));
    }

    // Sol deletes the account; Mo revokes this device.
    assert_eq!(
        app.delete("/v1/account", &sol.access_token).await?.status(),
        204
    );
    let mo_path = format!("/v1/devices/{}", mo_device.device_id);
    assert_eq!(app.delete(&mo_path, &mo.access_token).await?.status(), 204);
    gone.push((
        "Sol's device id".into(),
        sol_device.device_id.to_string().into_bytes(),
    ));
    gone.push((
        "Sol's account id".into(),
        sol_device.account_id.to_string().into_bytes(),
    ));
    gone.push((
        "Sol's public key".into(),
        sol_device.key.verifying_key().to_bytes().to_vec(),
    ));
    gone.push((
        "Sol's login".into(),
        login_of(&sol.access_token)?.into_bytes(),
    ));
    gone.push((
        "Mo's login".into(),
        login_of(&mo.access_token)?.into_bytes(),
    ));
    gone.push((
        "Mo's refresh token hash".into(),
        hearth_server::crypto::sha256(mo.refresh_token.as_bytes()).to_vec(),
    ));

    // The retention of the circle's log runs out (the sweeper's own purge,
    // at a time past it).
    let db = app.stop().await?;
    let storage = db.storage().await?;
    let later = hearth_server::now() + 31 * 24 * 3600;
    storage.purge_expired(later).await?;
    storage.close().await;

    let bytes = everything(&db).await?;
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    for (what, value) in &gone {
        let raw = bytes.windows(value.len()).any(|w| w == value.as_slice());
        let as_text = String::from_utf8(value.clone())
            .map(|t| text.contains(&t.to_lowercase()))
            .unwrap_or(false);
        let as_hex = text.contains(&hex(value));
        assert!(
            !(raw || as_text || as_hex),
            "{what} is still in the database"
        );
    }
    Ok(())
}

/// Mo and Fay are a circle and then both delete their accounts; in another
/// circle, Fay's, Kit stays. The next sweep deletes the first circle
/// — its row, its GroupInfo, its schedule snapshot, its log — and leaves
/// the second, which someone is still in.
async fn a_circle_everyone_left_goes_with_its_group_info_and_snapshot(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    // Mo facilitates the first circle, with Fay; Fay the second, with Kit.
    let people = [
        app.signed_in().await?,
        app.signed_in().await?,
        app.signed_in().await?,
    ];
    let abandoned = app.opaque_circle_of(&people[0..2]).await?;
    let kept = app.opaque_circle_of(&people[1..3]).await?;
    let [(_, mo), (_, fay), _] = &people[..] else {
        bail!("three people")
    };
    let snapshot = hearth_protocol::circles::PutSnapshot {
        version: 0,
        snapshot: Base64Bytes::from(hearth_tests::opaque_message(&abandoned, 1, b"calendar")),
    };
    let put = app
        .put_json(
            &format!("/v1/circles/{abandoned}/snapshot"),
            &mo.access_token,
            &snapshot,
        )
        .await?;
    anyhow::ensure!(put.status().is_success(), "snapshot: {}", put.status());
    send(&app, &abandoned, &fay.access_token).await?;

    for person in [mo, fay] {
        assert_eq!(
            app.delete("/v1/account", &person.access_token)
                .await?
                .status(),
            204
        );
    }
    let db = app.stop().await?;
    let storage = db.storage().await?;
    let purged = storage.purge_expired(hearth_server::now()).await?;
    storage.close().await;
    assert_eq!(purged.circles, 1, "the circle nobody is in");

    let rows = db.dump().await?;
    let of = |circle: &CircleId| hex(circle.as_bytes());
    let mentions = |circle: &CircleId| {
        rows.iter()
            .filter(|r| r.contains(&of(circle)))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        mentions(&abandoned).is_empty(),
        "nothing of the abandoned circle: {:?}",
        mentions(&abandoned)
    );
    assert!(
        !rows.iter().any(|r| r.starts_with("snapshots:")),
        "its snapshot went with it"
    );
    assert!(
        mentions(&kept).iter().any(|r| r.starts_with("circles:")),
        "the circle Kit is still in stays"
    );
    Ok(())
}
