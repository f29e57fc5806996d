//! Facilitator codes and enrolment, each account's usage, and the
//! instance's figures.

use super::{NOW, account_with_device, circle_of, open};
use anyhow::Result;
use hearth_server::crypto::{random_uuid, sha256};
use hearth_server::storage::{NewInvite, NewJoinRequest, NewMessage, Usage};
use hearth_tests::{Db, on_both_databases, rand_bytes};

on_both_databases!(
    a_facilitator_code_enrols_once_until_it_expires_and_enrolment_can_end,
    usage_counts_what_an_account_facilitates_holds_and_has_outstanding,
);

/// The operator mints two codes. Kit redeems the first: enrolled, once (a
/// second use is refused, as is an expired code, and the sweeper takes
/// expired ones away). Kit redeeming the second keeps the first date. The
/// list names Kit's account with its date; revoking ends it, once.
async fn a_facilitator_code_enrols_once_until_it_expires_and_enrolment_can_end(
    db: Db,
) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (kit, _) = account_with_device(storage.as_ref()).await?;
    let (first, second, stale) = (rand_bytes::<32>(), rand_bytes::<32>(), rand_bytes::<32>());
    for (code, expires_at) in [
        (&first, NOW + 3600),
        (&second, NOW + 3600),
        (&stale, NOW - 1),
    ] {
        storage
            .insert_facilitator_code(code, expires_at, NOW - 10)
            .await?;
    }
    assert_eq!(storage.facilitator_since(kit).await?, None);
    assert_eq!(
        storage.redeem_facilitator_code(&stale, kit, NOW).await?,
        None,
        "expired"
    );
    assert_eq!(
        storage.redeem_facilitator_code(&first, kit, NOW).await?,
        Some(NOW)
    );
    assert_eq!(
        storage
            .redeem_facilitator_code(&first, kit, NOW + 1)
            .await?,
        None,
        "used"
    );
    assert_eq!(
        storage
            .redeem_facilitator_code(&second, kit, NOW + 5)
            .await?,
        Some(NOW),
        "enrolled since the first"
    );
    assert_eq!(storage.facilitator_since(kit).await?, Some(NOW));
    assert_eq!(storage.facilitators().await?, vec![(kit, NOW)]);
    let purged = storage.purge_expired(NOW).await?;
    assert_eq!(purged.link_tokens, 1, "the expired code is swept");

    assert!(storage.revoke_facilitator(kit).await?);
    assert!(!storage.revoke_facilitator(kit).await?);
    assert_eq!(storage.facilitator_since(kit).await?, None);
    assert!(storage.facilitators().await?.is_empty());
    Ok(())
}

/// Mo's account: two devices (one revoked), two circles it facilitates
/// (a member elsewhere does not count), invites there (expired and used-up
/// ones do not count). The figures count the instance without naming it.
async fn usage_counts_what_an_account_facilitates_holds_and_has_outstanding(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (mo, phone) = account_with_device(storage.as_ref()).await?;
    let laptop = super::new_device();
    let link = rand_bytes::<32>();
    storage.insert_link_token(&link, mo, NOW + 600).await?;
    storage.link_device(&link, NOW, &laptop).await?;
    let (_, spare) = {
        let spare = super::new_device();
        let token = rand_bytes::<32>();
        storage.insert_link_token(&token, mo, NOW + 600).await?;
        storage.link_device(&token, NOW, &spare).await?;
        (token, spare)
    };
    storage.revoke_device(mo, spare.id, NOW).await?;
    let first = circle_of(storage.as_ref(), phone.id).await?;
    let second = circle_of(storage.as_ref(), laptop.id).await?;
    let (_, other) = account_with_device(storage.as_ref()).await?;
    let _elsewhere = circle_of(storage.as_ref(), other.id).await?;
    for (circle, expires_at, uses_left) in [
        (&first, NOW + 60, true),
        (&first, NOW - 1, true),
        (&second, NOW + 60, true),
        (&second, NOW + 60, false),
    ] {
        let token = rand_bytes::<32>();
        storage
            .create_invite(&NewInvite {
                id: random_uuid()?,
                circle_id: circle.clone(),
                token_hash: sha256(&token),
                expires_at,
                max_uses: 1,
                now: NOW - 100,
            })
            .await?;
        if !uses_left {
            let request = NewJoinRequest {
                id: random_uuid()?,
                requester: other.id,
                device_ids: vec![other.id],
                note: None,
                now: NOW - 50,
            };
            storage.redeem_invite(&sha256(&token), &request).await?;
        }
    }
    assert_eq!(
        storage.usage(mo, NOW).await?,
        Usage {
            circles: 2,
            devices: 2,
            invites: 2,
        }
    );
    let message = NewMessage {
        circle: first.clone(),
        sender: phone.id,
        message_id: random_uuid()?,
        epoch: 0,
        ciphertext: vec![7; 100],
        digest: sha256(&[7; 100]),
        now: NOW,
    };
    storage.append_messages(&[message], 5).await?;
    let figures = storage.figures().await?;
    assert_eq!(figures.accounts, 2);
    assert_eq!(figures.devices, 4, "revoked devices are rows too");
    assert_eq!(figures.circles, 3);
    assert_eq!(figures.facilitators, 0);
    assert!(figures.messages >= 1);
    assert!(figures.bytes >= 100, "{figures:?}");
    Ok(())
}
