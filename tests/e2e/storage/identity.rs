//! Identity: challenges, accounts and devices, link tokens, logins and
//! refresh tokens, signing keys.

use super::{NOW, account_with_device, login_for, new_device, open};
use anyhow::Result;
use hearth_server::crypto::{new_account_id, new_device_id, random_uuid, sha256};
use hearth_server::storage::{
    LoginId, NewDevice, NewRefreshToken, RefreshOutcome, SigningKeyRecord, StorageError,
};
use hearth_tests::{Db, on_both_databases, rand_bytes};
use secrecy::{ExposeSecret, SecretBox};

on_both_databases!(
    a_challenge_is_accepted_once_and_never_after_it_expires,
    a_duplicate_key_is_refused_without_leaving_half_an_account,
    a_link_token_adds_one_device_then_is_spent,
    refresh_tokens_rotate_and_a_replayed_one_ends_the_login,
    concurrent_refreshes_of_one_token_rotate_it_exactly_once,
    revoking_a_device_ends_its_logins,
    deleting_an_account_removes_everything_it_owned,
    the_sweeper_purges_only_what_has_expired,
    signing_keys_are_kept_once_per_kid,
    logging_out_ends_one_login_and_leaves_the_others,
);

async fn a_challenge_is_accepted_once_and_never_after_it_expires(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let fresh = rand_bytes::<32>();
    let stale = rand_bytes::<32>();
    storage.insert_challenge(&fresh, NOW + 60).await?;
    storage.insert_challenge(&stale, NOW - 1).await?;
    assert!(
        storage.take_challenge(&fresh, NOW).await?,
        "a fresh challenge works"
    );
    assert!(!storage.take_challenge(&fresh, NOW).await?, "but only once");
    assert!(
        !storage.take_challenge(&stale, NOW).await?,
        "an expired one never"
    );
    assert!(
        !storage.take_challenge(&rand_bytes(), NOW).await?,
        "an unknown one never"
    );
    Ok(())
}

async fn a_duplicate_key_is_refused_without_leaving_half_an_account(db: Db) -> Result<()> {
    let (test_db, storage) = open(db).await?;
    let (account, device) = account_with_device(storage.as_ref()).await?;
    let intruder = NewDevice {
        id: new_device_id()?,
        ..device.clone()
    };
    let other_account = new_account_id()?;
    let err = storage
        .create_account(other_account, &intruder)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::DeviceExists), "{err}");

    let rows = test_db.dump().await?;
    let accounts: Vec<_> = rows.iter().filter(|r| r.starts_with("accounts:")).collect();
    assert_eq!(
        accounts.len(),
        1,
        "the failed account was rolled back: {accounts:?}"
    );
    assert!(accounts[0].contains(&account.to_string()));
    assert_eq!(storage.account_devices(account).await?.len(), 1);
    Ok(())
}

async fn a_link_token_adds_one_device_then_is_spent(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (account, _) = account_with_device(storage.as_ref()).await?;
    let token = rand_bytes::<32>();
    let expired = rand_bytes::<32>();
    storage
        .insert_link_token(&token, account, NOW + 600)
        .await?;
    storage
        .insert_link_token(&expired, account, NOW - 1)
        .await?;

    let second = new_device();
    assert_eq!(storage.link_device(&token, NOW, &second).await?, account);
    let third = new_device();
    assert!(matches!(
        storage.link_device(&token, NOW, &third).await,
        Err(StorageError::LinkTokenInvalid)
    ));
    assert!(matches!(
        storage.link_device(&expired, NOW, &third).await,
        Err(StorageError::LinkTokenInvalid)
    ));
    let devices = storage.account_devices(account).await?;
    assert_eq!(devices.len(), 2);
    assert!(devices.iter().any(|d| d.id == second.id));
    assert!(storage.device(third.id).await?.is_none());
    Ok(())
}

async fn refresh_tokens_rotate_and_a_replayed_one_ends_the_login(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (account, device) = account_with_device(storage.as_ref()).await?;
    let (login, first) = login_for(storage.as_ref(), device.id).await?;
    let live = storage.live_login(login, device.id).await?.expect("live");
    assert_eq!(live.account_id, account);

    let second = NewRefreshToken {
        hash: rand_bytes(),
        expires_at: NOW + 7200,
    };
    assert_eq!(
        storage.rotate_refresh_token(&first, &second, NOW).await?,
        RefreshOutcome::Rotated {
            device_id: device.id,
            login_id: login
        }
    );
    let third = NewRefreshToken {
        hash: rand_bytes(),
        expires_at: NOW + 7200,
    };
    assert_eq!(
        storage.rotate_refresh_token(&first, &third, NOW).await?,
        RefreshOutcome::Reused {
            device_id: device.id
        }
    );
    assert!(
        storage.live_login(login, device.id).await?.is_none(),
        "the login ended"
    );
    assert_eq!(
        storage
            .rotate_refresh_token(&second.hash, &third, NOW)
            .await?,
        RefreshOutcome::Invalid,
        "the token descended from the replayed one is dead too"
    );
    assert_eq!(
        storage
            .rotate_refresh_token(&rand_bytes(), &third, NOW)
            .await?,
        RefreshOutcome::Invalid
    );
    Ok(())
}

async fn concurrent_refreshes_of_one_token_rotate_it_exactly_once(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (_, device) = account_with_device(storage.as_ref()).await?;
    let (_, token) = login_for(storage.as_ref(), device.id).await?;
    let attempts = (0..8).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move {
            let next = NewRefreshToken {
                hash: rand_bytes(),
                expires_at: NOW + 7200,
            };
            storage.rotate_refresh_token(&token, &next, NOW).await
        })
    });
    let mut rotated = 0;
    for attempt in attempts {
        if let RefreshOutcome::Rotated { .. } = attempt.await?? {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "exactly one of eight racing refreshes wins");
    Ok(())
}

async fn revoking_a_device_ends_its_logins(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (account, device) = account_with_device(storage.as_ref()).await?;
    let (login, token) = login_for(storage.as_ref(), device.id).await?;
    let (stranger, _) = account_with_device(storage.as_ref()).await?;

    assert!(
        !storage.revoke_device(stranger, device.id, NOW).await?,
        "not another account's"
    );
    assert!(storage.revoke_device(account, device.id, NOW).await?);
    assert!(
        !storage.revoke_device(account, device.id, NOW).await?,
        "not twice"
    );
    assert!(storage.live_login(login, device.id).await?.is_none());
    let next = NewRefreshToken {
        hash: rand_bytes(),
        expires_at: NOW + 7200,
    };
    assert_eq!(
        storage.rotate_refresh_token(&token, &next, NOW).await?,
        RefreshOutcome::Invalid
    );
    assert!(storage.account_devices(account).await?.is_empty());
    assert_eq!(
        storage.device(device.id).await?.and_then(|d| d.revoked_at),
        Some(NOW)
    );
    Ok(())
}

async fn deleting_an_account_removes_everything_it_owned(db: Db) -> Result<()> {
    let (test_db, storage) = open(db).await?;
    let (account, device) = account_with_device(storage.as_ref()).await?;
    login_for(storage.as_ref(), device.id).await?;
    storage
        .insert_link_token(&rand_bytes(), account, NOW + 60)
        .await?;
    let (keeper, kept_device) = account_with_device(storage.as_ref()).await?;

    storage.delete_account(account).await?;
    let rows = test_db.dump().await?;
    let key_hex = hearth_tests::hex(&device.public_key);
    for row in &rows {
        assert!(!row.contains(&account.to_string()), "left behind: {row}");
        assert!(!row.contains(&device.id.to_string()), "left behind: {row}");
        assert!(!row.contains(&key_hex), "left behind: {row}");
    }
    assert!(
        rows.iter().any(|r| r.contains(&keeper.to_string())),
        "other accounts stay"
    );
    assert!(storage.device(kept_device.id).await?.is_some());
    Ok(())
}

async fn the_sweeper_purges_only_what_has_expired(db: Db) -> Result<()> {
    let (test_db, storage) = open(db).await?;
    let (account, device) = account_with_device(storage.as_ref()).await?;
    storage.insert_challenge(&rand_bytes(), NOW - 10).await?;
    storage.insert_challenge(&rand_bytes(), NOW + 10).await?;
    storage
        .insert_link_token(&rand_bytes(), account, NOW - 10)
        .await?;
    storage
        .insert_link_token(&rand_bytes(), account, NOW + 10)
        .await?;
    let old = LoginId(random_uuid()?);
    storage
        .create_login(
            old,
            device.id,
            NOW - 100,
            &NewRefreshToken {
                hash: rand_bytes(),
                expires_at: NOW - 10,
            },
        )
        .await?;
    let (current, _) = login_for(storage.as_ref(), device.id).await?;

    let purged = storage.purge_expired(NOW).await?;
    assert_eq!((purged.challenges, purged.link_tokens), (1, 1));
    assert!(purged.logins >= 1);
    let rows = test_db.dump().await?;
    let count = |table: &str| {
        rows.iter()
            .filter(|r| r.starts_with(&format!("{table}:")))
            .count()
    };
    assert_eq!(count("challenges"), 1);
    assert_eq!(count("link_tokens"), 1);
    assert_eq!(count("logins"), 1);
    assert_eq!(count("refresh_tokens"), 1);
    assert!(storage.live_login(current, device.id).await?.is_some());
    Ok(())
}

async fn signing_keys_are_kept_once_per_kid(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let key = |kid: &str, at: i64| SigningKeyRecord {
        kid: kid.into(),
        private_key: SecretBox::new(Box::new(sha256(kid.as_bytes()).to_vec())),
        created_at: at,
    };
    storage.insert_signing_key(&key("b", NOW)).await?;
    storage.insert_signing_key(&key("a", NOW - 5)).await?;
    storage
        .insert_signing_key(&SigningKeyRecord {
            created_at: NOW + 99,
            ..key("a", 0)
        })
        .await?;
    let keys = storage.signing_keys().await?;
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        ["a", "b"],
        "oldest first"
    );
    assert_eq!(keys[0].created_at, NOW - 5, "the first insert wins");
    assert_eq!(*keys[1].private_key.expose_secret(), sha256(b"b").to_vec());
    // Wrapping replaces the stored bytes of one key, by kid.
    assert!(storage.rewrap_signing_key("b", &[7; 60]).await?);
    assert!(!storage.rewrap_signing_key("c", &[7; 60]).await?);
    let keys = storage.signing_keys().await?;
    assert_eq!(*keys[1].private_key.expose_secret(), vec![7; 60]);
    assert_eq!(*keys[0].private_key.expose_secret(), sha256(b"a").to_vec());
    Ok(())
}

async fn logging_out_ends_one_login_and_leaves_the_others(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (_, device) = account_with_device(storage.as_ref()).await?;
    let (phone, _) = login_for(storage.as_ref(), device.id).await?;
    let (laptop, _) = login_for(storage.as_ref(), device.id).await?;
    assert!(storage.end_login(phone).await?, "the phone logs out");
    assert!(!storage.end_login(phone).await?, "once");
    assert!(storage.live_login(phone, device.id).await?.is_none());
    assert!(storage.live_login(laptop, device.id).await?.is_some());
    assert!(
        storage
            .live_login(laptop, new_device_id()?)
            .await?
            .is_none(),
        "a login speaks for its own device only"
    );
    Ok(())
}
