//! KeyPackages: a bounded pool per device, a last resort that is lent and
//! never consumed, and claims that never hand one out twice.

use super::{NOW, device, open};
use anyhow::Result;
use hearth_server::storage::{KeyPackageStored, NewKeyPackage};
use hearth_tests::{Db, on_both_databases, rand_bytes};
use std::collections::HashSet;

on_both_databases!(
    a_pool_keeps_what_fits_and_each_key_package_once,
    claims_take_one_at_a_time_and_then_lend_the_last_resort,
    concurrent_claims_never_hand_out_one_key_package_twice,
    a_claim_in_another_suite_takes_nothing,
);

/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`.
const SUITE: u16 = 1;
/// `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519`.
const CHACHA: u16 = 3;

fn key_package(expires_at: i64) -> NewKeyPackage {
    in_suite(expires_at, SUITE)
}

fn in_suite(expires_at: i64, cipher_suite: u16) -> NewKeyPackage {
    NewKeyPackage {
        hash_ref: rand_bytes::<32>().to_vec(),
        data: rand_bytes::<64>().to_vec(),
        expires_at,
        cipher_suite,
    }
}

async fn a_pool_keeps_what_fits_and_each_key_package_once(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let sam = device(storage.as_ref()).await?;
    let first = key_package(NOW + 3600);
    let outcomes = storage
        .store_key_packages(
            sam,
            &[
                first.clone(),
                first.clone(),
                key_package(NOW + 3600),
                key_package(NOW + 3600),
            ],
            2,
            NOW,
        )
        .await?;
    assert_eq!(
        outcomes,
        [
            KeyPackageStored::Stored,
            KeyPackageStored::Duplicate,
            KeyPackageStored::Stored,
            KeyPackageStored::PoolFull
        ]
    );
    assert_eq!(storage.key_package_count(sam, NOW).await?, (2, false));
    assert_eq!(
        storage.key_package_count(sam, NOW + 3600).await?,
        (0, false),
        "expired ones do not count"
    );

    let last_resort = key_package(NOW + 3600);
    assert_eq!(
        storage.store_last_resort(sam, &last_resort, NOW).await?,
        KeyPackageStored::Stored
    );
    assert_eq!(
        storage.store_last_resort(sam, &first, NOW).await?,
        KeyPackageStored::Duplicate,
        "a pooled KeyPackage cannot also be the last resort"
    );
    assert_eq!(storage.key_package_count(sam, NOW).await?, (2, true));
    Ok(())
}

async fn claims_take_one_at_a_time_and_then_lend_the_last_resort(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let sam = device(storage.as_ref()).await?;
    let (fresh, stale) = (key_package(NOW + 3600), key_package(NOW - 1));
    storage
        .store_key_packages(sam, &[stale, fresh.clone()], 10, NOW - 100)
        .await?;
    assert_eq!(
        storage.claim_key_package(sam, SUITE, NOW).await?,
        Some((fresh.data, false)),
        "the unexpired one, consumed"
    );
    assert_eq!(
        storage.claim_key_package(sam, SUITE, NOW).await?,
        None,
        "an expired one is never handed out, and there is no last resort"
    );

    let old = key_package(NOW + 3600);
    let new = key_package(NOW + 3600);
    storage.store_last_resort(sam, &old, NOW).await?;
    storage.store_last_resort(sam, &new, NOW).await?;
    for _ in 0..3 {
        assert_eq!(
            storage.claim_key_package(sam, SUITE, NOW).await?,
            Some((new.data.clone(), true)),
            "the newest last resort, lent again and again"
        );
    }
    assert_eq!(storage.key_package_count(sam, NOW).await?, (0, true));
    Ok(())
}

async fn concurrent_claims_never_hand_out_one_key_package_twice(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let sam = device(storage.as_ref()).await?;
    let pool: Vec<_> = (0..10).map(|_| key_package(NOW + 3600)).collect();
    storage.store_key_packages(sam, &pool, 10, NOW).await?;
    let claims = (0..12).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move { storage.claim_key_package(sam, SUITE, NOW).await })
    });
    let mut handed_out = Vec::new();
    for claim in claims {
        if let Some((data, last_resort)) = claim.await?? {
            assert!(!last_resort);
            handed_out.push(data);
        }
    }
    assert_eq!(handed_out.len(), 10, "ten to hand out, two claims go empty");
    let distinct: HashSet<_> = handed_out.iter().collect();
    assert_eq!(distinct.len(), 10, "no KeyPackage twice");
    Ok(())
}

async fn a_claim_in_another_suite_takes_nothing(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let sam = device(storage.as_ref()).await?;
    let chacha = in_suite(NOW + 3600, CHACHA);
    storage
        .store_key_packages(sam, std::slice::from_ref(&chacha), 10, NOW)
        .await?;
    let chacha_last = in_suite(NOW + 3600, CHACHA);
    storage.store_last_resort(sam, &chacha_last, NOW).await?;
    assert_eq!(
        storage.claim_key_package(sam, SUITE, NOW).await?,
        None,
        "Sam published only ChaCha20 KeyPackages: nothing for an AES circle"
    );
    assert_eq!(
        storage.key_package_count(sam, NOW).await?,
        (1, true),
        "and nothing was consumed"
    );
    let aes_last = key_package(NOW + 3600);
    storage.store_last_resort(sam, &aes_last, NOW).await?;
    assert_eq!(
        storage.claim_key_package(sam, CHACHA, NOW).await?,
        Some((chacha.data, false)),
        "a last resort per suite: storing one for AES kept the ChaCha20 one, and the pool comes first"
    );
    assert_eq!(
        storage.claim_key_package(sam, CHACHA, NOW).await?,
        Some((chacha_last.data, true))
    );
    assert_eq!(
        storage.claim_key_package(sam, SUITE, NOW).await?,
        Some((aes_last.data, true))
    );
    Ok(())
}
