//! Enrollment: invites by token hash with an expiry and a number of uses,
//! and the join requests that redeeming one queues.

use super::{NOW, account_with_device, circle_of, device, open};
use anyhow::Result;
use hearth_server::crypto::{random_uuid, sha256};
use hearth_server::storage::{NewInvite, NewJoinRequest};
use hearth_tests::{Db, on_both_databases, rand_bytes};

on_both_databases!(
    an_invite_admits_as_many_as_it_allows_while_it_lasts,
    a_member_redeeming_spends_no_use,
    join_requests_wait_for_a_facilitator_to_decline_or_approve,
    keypackages_are_claimed_by_their_own_account_or_the_facilitator_they_asked,
);

fn invite(
    circle: &hearth_protocol::CircleId,
    token: &[u8],
    expires_at: i64,
    max_uses: i64,
) -> NewInvite {
    NewInvite {
        id: random_uuid().unwrap(),
        circle_id: circle.clone(),
        token_hash: sha256(token),
        expires_at,
        max_uses,
        now: NOW,
    }
}

async fn a_member_redeeming_spends_no_use(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    storage
        .create_invite(&invite(&circle, b"hit_once", NOW + 600, 1))
        .await?;
    // The facilitator opens the link: refused, nothing spent, nothing queued.
    let refused = storage
        .redeem_invite(&sha256(b"hit_once"), &request(facilitator, b"me"))
        .await;
    assert!(
        matches!(
            refused,
            Err(hearth_server::storage::StorageError::AlreadyOnRoster)
        ),
        "{refused:?}"
    );
    assert_eq!(storage.invites(&circle).await?[0].uses, 0);
    assert!(storage.join_requests(&circle).await?.is_empty());
    // The person it was for still gets in.
    let sam = device(storage.as_ref()).await?;
    let redeemed = storage
        .redeem_invite(&sha256(b"hit_once"), &request(sam, b"hello"))
        .await?;
    assert_eq!(redeemed, Some(circle));
    Ok(())
}

fn request(requester: hearth_protocol::DeviceId, note: &[u8]) -> NewJoinRequest {
    NewJoinRequest {
        id: random_uuid().unwrap(),
        requester,
        device_ids: vec![requester],
        note: Some(note.to_vec()),
        now: NOW,
    }
}

async fn an_invite_admits_as_many_as_it_allows_while_it_lasts(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    let twice = invite(&circle, b"hit_twice", NOW + 600, 2);
    let expired = invite(&circle, b"hit_expired", NOW - 1, 5);
    storage.create_invite(&twice).await?;
    storage.create_invite(&expired).await?;
    let listed = storage.invites(&circle).await?;
    assert_eq!(listed.len(), 2);
    let stored = listed.iter().find(|i| i.id == twice.id).expect("listed");
    assert_eq!(
        (stored.expires_at, stored.max_uses, stored.uses),
        (NOW + 600, 2, 0)
    );

    for _ in 0..2 {
        let sam = device(storage.as_ref()).await?;
        let redeemed = storage
            .redeem_invite(&sha256(b"hit_twice"), &request(sam, b"hello"))
            .await?;
        assert_eq!(redeemed, Some(circle.clone()));
    }
    let late = device(storage.as_ref()).await?;
    for token in [&b"hit_twice"[..], b"hit_expired", b"hit_made_up"] {
        let refused = storage
            .redeem_invite(&sha256(token), &request(late, b"too late"))
            .await?;
        assert_eq!(refused, None, "used up, expired or unknown");
    }
    assert_eq!(
        storage.join_requests(&circle).await?.len(),
        2,
        "refusals queue nothing"
    );
    let used = storage.invites(&circle).await?;
    assert_eq!(
        used.iter().find(|i| i.id == twice.id).map(|i| i.uses),
        Some(2)
    );

    let elsewhere = circle_of(storage.as_ref(), facilitator).await?;
    assert!(
        !storage.revoke_invite(&elsewhere, expired.id).await?,
        "not another circle's"
    );
    assert!(storage.revoke_invite(&circle, expired.id).await?);
    assert!(!storage.revoke_invite(&circle, expired.id).await?, "once");
    assert_eq!(storage.invites(&circle).await?.len(), 1);
    Ok(())
}

async fn join_requests_wait_for_a_facilitator_to_decline_or_approve(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    storage
        .create_invite(&invite(&circle, b"hit_open", NOW + 600, 10))
        .await?;
    let (sam, alex) = (
        device(storage.as_ref()).await?,
        device(storage.as_ref()).await?,
    );
    let note = rand_bytes::<40>().to_vec();
    let from_sam = NewJoinRequest {
        device_ids: vec![sam, alex],
        ..request(sam, &note)
    };
    storage
        .redeem_invite(&sha256(b"hit_open"), &from_sam)
        .await?;
    let from_alex = NewJoinRequest {
        note: None,
        now: NOW + 1,
        ..request(alex, b"")
    };
    storage
        .redeem_invite(&sha256(b"hit_open"), &from_alex)
        .await?;

    let waiting = storage.join_requests(&circle).await?;
    assert_eq!(
        waiting.iter().map(|r| r.id).collect::<Vec<_>>(),
        [from_sam.id, from_alex.id],
        "oldest first"
    );
    let sams = storage
        .join_request(&circle, from_sam.id)
        .await?
        .expect("pending");
    assert_eq!(sams.device_ids, [sam, alex]);
    assert_eq!((sams.note, sams.created_at), (Some(note), NOW));
    let elsewhere = circle_of(storage.as_ref(), facilitator).await?;
    assert!(
        storage
            .join_request(&elsewhere, from_sam.id)
            .await?
            .is_none()
    );

    assert!(
        !storage
            .decline_join_request(&elsewhere, from_alex.id)
            .await?
    );
    assert!(storage.decline_join_request(&circle, from_alex.id).await?);
    assert!(
        !storage.decline_join_request(&circle, from_alex.id).await?,
        "once"
    );
    assert!(storage.join_request(&circle, from_alex.id).await?.is_none());
    assert_eq!(storage.join_requests(&circle).await?.len(), 1);
    Ok(())
}

async fn keypackages_are_claimed_by_their_own_account_or_the_facilitator_they_asked(
    db: Db,
) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (facilitators_account, facilitator) = account_with_device(storage.as_ref()).await?;
    let facilitator = facilitator.id;
    let (sams_account, sam) = account_with_device(storage.as_ref()).await?;
    let sam = sam.id;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    assert!(
        storage.may_claim(sam, sams_account, sam).await?,
        "a device may claim its own account's"
    );
    assert!(
        !storage
            .may_claim(facilitator, facilitators_account, sam)
            .await?,
        "a stranger's device is nobody else's to claim"
    );
    storage
        .create_invite(&invite(&circle, b"hit_sam", NOW + 600, 1))
        .await?;
    let asked = request(sam, b"hello");
    storage.redeem_invite(&sha256(b"hit_sam"), &asked).await?;
    assert!(
        storage
            .may_claim(facilitator, facilitators_account, sam)
            .await?,
        "Sam asked to join the facilitator's circle"
    );
    assert!(
        !storage.may_claim(sam, sams_account, facilitator).await?,
        "asking does not let Sam claim the facilitator's"
    );
    storage.decline_join_request(&circle, asked.id).await?;
    assert!(
        !storage
            .may_claim(facilitator, facilitators_account, sam)
            .await?,
        "once declined, Sam is a stranger again"
    );
    Ok(())
}
