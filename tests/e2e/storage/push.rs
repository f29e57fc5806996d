//! Push: sealed targets (stored, replaced, revived, deleted with the
//! device), the wake queue (one row per device, due times, claims that no
//! two claimers share, requeueing what came mid-send, retries, dead
//! targets), and socket presence per node: it holds a wake only while its
//! node is alive, and a held wake is weighed again, not dropped on a dead
//! node's word.

use super::{NOW, account_with_device, circle_of, device, open};
use anyhow::Result;
use hearth_protocol::circles::Role;
use hearth_server::storage::{AddedDevice, NewCommit, WakeFor, WakeOutcome};
use hearth_tests::{Db, on_both_databases, rand_bytes};
use std::collections::HashSet;

on_both_databases!(
    a_target_is_stored_replaced_revived_and_deleted_with_its_device,
    wakes_queue_once_per_device_and_go_only_to_devices_without_a_socket,
    a_wake_held_for_a_dead_nodes_socket_goes_out_and_a_live_ones_is_dropped,
    a_claimed_wake_is_sent_retried_requeued_or_given_up,
    racing_claimers_never_share_a_wake,
    a_stopping_node_gives_back_its_claims_and_only_its_own,
);

/// A node that stops gives back the wakes it claimed: the next claimer
/// takes them at once instead of after the lease. A claim that lapsed and
/// was taken by another node is not the stopping node's to give back.
async fn a_stopping_node_gives_back_its_claims_and_only_its_own(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let ada = device(storage.as_ref()).await?;
    let bo = device(storage.as_ref()).await?;
    for who in [ada, bo] {
        storage.put_push_target(who, b"sealed", NOW).await?;
    }
    storage.queue_wakes(&[(ada, NOW), (bo, NOW)]).await?;
    assert_eq!(storage.claim_wakes(NOW, NOW + 60, 10, 30).await?.len(), 2);
    assert!(
        storage
            .claim_wakes(NOW + 1, NOW + 61, 10, 30)
            .await?
            .is_empty()
    );

    // Bo's claim lapsed and another node took it.
    let bo_again = storage.claim_wakes(NOW + 60, NOW + 120, 10, 30).await?;
    assert_eq!(bo_again.len(), 2, "both lapsed");
    assert_eq!(storage.release_wakes(&[]).await?, 0);
    // The first node, stopping now, names the claims it made.
    assert_eq!(
        storage
            .release_wakes(&[(ada, NOW + 60), (bo, NOW + 60)])
            .await?,
        0,
        "the claims changed since: not its own any more"
    );
    // The second node stops: its claims go back, and are taken at once.
    assert_eq!(
        storage
            .release_wakes(&[(ada, NOW + 120), (bo, NOW + 120)])
            .await?,
        2
    );
    let taken = storage.claim_wakes(NOW + 61, NOW + 121, 10, 30).await?;
    let mut devices: Vec<_> = taken.iter().map(|w| w.device_id).collect();
    devices.sort();
    let mut expected = vec![ada, bo];
    expected.sort();
    assert_eq!(devices, expected);
    Ok(())
}

async fn a_target_is_stored_replaced_revived_and_deleted_with_its_device(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (account, device) = account_with_device(storage.as_ref()).await?;
    let device = device.id;
    assert!(storage.push_target(device).await?.is_none());
    storage.put_push_target(device, b"sealed one", NOW).await?;
    let stored = storage.push_target(device).await?.expect("stored");
    assert_eq!(stored.sealed, b"sealed one");
    assert_eq!(stored.registered_at, NOW);
    assert!(stored.dead_at.is_none() && stored.last_wake_at.is_none());

    // The push service says it is gone; registering again revives it.
    storage.queue_wakes(&[(device, NOW)]).await?;
    let claimed = storage.claim_wakes(NOW, NOW + 60, 10, 30).await?;
    assert_eq!(claimed.len(), 1);
    storage
        .settle_wake(
            device,
            &WakeOutcome::Gone {
                now: NOW + 1,
                reason: "unregistered",
            },
        )
        .await?;
    let dead = storage.push_target(device).await?.expect("kept");
    assert_eq!(dead.dead_at, Some(NOW + 1));
    assert_eq!(dead.dead_reason.as_deref(), Some("unregistered"));
    assert!(
        storage
            .wake_candidates(&[WakeFor::Device(device)])
            .await?
            .is_empty(),
        "a dead target is not woken"
    );
    assert_eq!(storage.queue_wakes(&[(device, NOW + 2)]).await?, 0);
    storage
        .put_push_target(device, b"sealed two", NOW + 5)
        .await?;
    let revived = storage.push_target(device).await?.expect("stored");
    assert_eq!(revived.sealed, b"sealed two");
    assert!(revived.dead_at.is_none() && revived.dead_reason.is_none());

    assert!(storage.delete_push_target(device).await?);
    assert!(!storage.delete_push_target(device).await?);
    storage
        .put_push_target(device, b"sealed three", NOW)
        .await?;
    assert!(storage.revoke_device(account, device, NOW).await?);
    assert!(
        storage.push_target(device).await?.is_none(),
        "revoked: gone"
    );
    let (other_account, other) = account_with_device(storage.as_ref()).await?;
    storage.put_push_target(other.id, b"sealed", NOW).await?;
    storage.delete_account(other_account).await?;
    assert!(
        storage.push_target(other.id).await?.is_none(),
        "deleted: gone"
    );
    Ok(())
}

async fn wakes_queue_once_per_device_and_go_only_to_devices_without_a_socket(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    let (ada, ben, cleo) = (
        device(storage.as_ref()).await?,
        device(storage.as_ref()).await?,
        device(storage.as_ref()).await?,
    );
    let added = [ada, ben, cleo].map(|device_id| AddedDevice {
        device_id,
        role: Role::Member,
        welcome_id: uuid::Uuid::new_v4(),
    });
    storage
        .apply_commit(
            &circle,
            &NewCommit {
                sender: facilitator,
                epoch: 0,
                commit: rand_bytes::<64>().to_vec(),
                welcome: Some(rand_bytes::<64>().to_vec()),
                group_info: None,
                added: added.to_vec(),
                removed: Vec::new(),
                join_request: None,
                now: NOW,
            },
        )
        .await?;
    for device in [facilitator, ada, ben] {
        storage.put_push_target(device, b"sealed", NOW).await?;
    }
    // Cleo has no target; the sender is left out when the wake says so.
    let everyone = WakeFor::Circle {
        circle: circle.clone(),
        except: Some(facilitator),
    };
    let found: HashSet<_> = storage
        .wake_candidates(&[everyone.clone(), WakeFor::Device(ada)])
        .await?
        .into_iter()
        .collect();
    assert_eq!(
        found,
        HashSet::from([ada, ben]),
        "each once, not the sender"
    );
    let facilitators = storage
        .wake_candidates(&[WakeFor::Facilitators(circle.clone())])
        .await?;
    assert_eq!(facilitators.len(), 1);
    assert_eq!(facilitators[0], facilitator);

    // Queued twice, one row: the second is coalesced.
    assert_eq!(
        storage
            .queue_wakes(&[(ada, NOW + 5), (ben, NOW + 5)])
            .await?,
        2
    );
    assert_eq!(storage.queue_wakes(&[(ada, NOW + 9)]).await?, 0);
    assert_eq!(storage.next_wake_due().await?, Some(NOW + 5));
    // An operator's view: two queued, none due yet; then both, due since
    // NOW + 5.
    let queue = storage.wake_queue(NOW).await?;
    assert_eq!((queue.queued, queue.due, queue.oldest_due_at), (2, 0, None));
    let queue = storage.wake_queue(NOW + 65).await?;
    assert_eq!(
        (queue.queued, queue.due, queue.oldest_due_at),
        (2, 2, Some(NOW + 5))
    );
    assert!(
        storage.claim_wakes(NOW, NOW + 60, 10, 30).await?.is_empty(),
        "not due yet"
    );
    // Ben came online on node "a" before his wake went: it is held until
    // "a" must have renewed its life, not sent.
    storage
        .record_presence("a", NOW + 15, &[ben], &[], false)
        .await?;
    let claimed = storage.claim_wakes(NOW + 5, NOW + 65, 10, 30).await?;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].device_id, ada);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].coalesced, 1);
    assert_eq!(claimed[0].sealed, b"sealed");
    assert_eq!(
        storage.next_wake_due().await?,
        Some(NOW + 15),
        "Ben's, held"
    );
    // Node "a" renewed and Ben is still there: his wake goes nowhere.
    assert!(storage.renew_node("a", NOW + 10, NOW + 25).await?);
    assert!(
        storage
            .claim_wakes(NOW + 15, NOW + 75, 10, 30)
            .await?
            .is_empty()
    );
    assert_eq!(
        storage.next_wake_due().await?,
        Some(NOW + 65),
        "only Ada's lease"
    );
    assert!(storage.random_push_device().await?.is_some());
    Ok(())
}

async fn a_wake_held_for_a_dead_nodes_socket_goes_out_and_a_live_ones_is_dropped(
    db: Db,
) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (ada, ben) = (
        device(storage.as_ref()).await?,
        device(storage.as_ref()).await?,
    );
    for who in [ada, ben] {
        storage.put_push_target(who, b"sealed", NOW).await?;
    }
    // Ada's socket is on node "old", Ben's on "live"; both nodes vouch
    // until NOW + 15.
    storage
        .record_presence("old", NOW + 15, &[ada], &[], false)
        .await?;
    storage
        .record_presence("live", NOW + 15, &[ben], &[], false)
        .await?;
    storage.queue_wakes(&[(ada, NOW), (ben, NOW)]).await?;
    assert!(
        storage.claim_wakes(NOW, NOW + 60, 10, 30).await?.is_empty(),
        "both look connected: held"
    );
    assert_eq!(storage.next_wake_due().await?, Some(NOW + 15));
    // "old" was killed: it never renews. "live" does, and purges the dead.
    assert!(storage.renew_node("live", NOW + 10, NOW + 25).await?);
    assert!(storage.renew_node("live", NOW + 16, NOW + 31).await?);
    assert!(
        !storage.renew_node("old", NOW + 16, NOW + 31).await?,
        "a lapsed node is not revived by renewing: it records its sockets afresh"
    );
    let claimed = storage.claim_wakes(NOW + 16, NOW + 76, 10, 30).await?;
    assert_eq!(claimed.len(), 1, "Ada's wake goes; Ben's is dropped");
    assert_eq!(claimed[0].device_id, ada);

    // A node that lapsed writes its sockets whole; one that stops cleanly
    // takes its word back at once.
    storage
        .record_presence("old", NOW + 40, &[ada], &[], true)
        .await?;
    storage
        .record_presence("live", NOW + 40, &[], &[ben], false)
        .await?;
    storage.forget_node("old").await?;
    storage
        .settle_wake(
            ada,
            &WakeOutcome::Sent {
                now: NOW + 16,
                next_due: NOW + 46,
            },
        )
        .await?;
    storage
        .queue_wakes(&[(ada, NOW + 30), (ben, NOW + 30)])
        .await?;
    let claimed = storage.claim_wakes(NOW + 50, NOW + 110, 10, 30).await?;
    assert_eq!(claimed.len(), 2, "no one vouches for either socket now");
    Ok(())
}

async fn a_claimed_wake_is_sent_retried_requeued_or_given_up(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let ada = device(storage.as_ref()).await?;
    assert!(storage.random_push_device().await?.is_none());
    storage.put_push_target(ada, b"sealed", NOW).await?;
    assert_eq!(storage.random_push_device().await?, Some(ada));
    storage.queue_wakes(&[(ada, NOW)]).await?;
    assert_eq!(storage.claim_wakes(NOW, NOW + 60, 10, 30).await?.len(), 1);
    assert!(
        storage
            .claim_wakes(NOW + 1, NOW + 61, 10, 30)
            .await?
            .is_empty(),
        "claimed until NOW + 60"
    );
    assert_eq!(storage.next_wake_due().await?, Some(NOW + 60));
    // The node that claimed it died: after the lease, it is claimed again.
    let again = storage.claim_wakes(NOW + 60, NOW + 120, 10, 30).await?;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    storage
        .settle_wake(ada, &WakeOutcome::Retry { at: NOW + 90 })
        .await?;
    assert_eq!(storage.next_wake_due().await?, Some(NOW + 90));
    assert_eq!(
        storage
            .claim_wakes(NOW + 90, NOW + 150, 10, 30)
            .await?
            .len(),
        1
    );
    storage
        .settle_wake(
            ada,
            &WakeOutcome::Sent {
                now: NOW + 91,
                next_due: NOW + 121,
            },
        )
        .await?;
    assert_eq!(
        storage.next_wake_due().await?,
        None,
        "sent: gone from the queue"
    );
    assert_eq!(
        storage.push_target(ada).await?.expect("kept").last_wake_at,
        Some(NOW + 91)
    );
    // However a wake was queued, it waits out the interval since the last.
    storage.queue_wakes(&[(ada, NOW + 100)]).await?;
    assert!(
        storage
            .claim_wakes(NOW + 100, NOW + 160, 10, 30)
            .await?
            .is_empty()
    );
    assert_eq!(storage.next_wake_due().await?, Some(NOW + 121));
    assert_eq!(
        storage
            .claim_wakes(NOW + 121, NOW + 181, 10, 30)
            .await?
            .len(),
        1
    );
    storage
        .settle_wake(
            ada,
            &WakeOutcome::Sent {
                now: NOW + 121,
                next_due: NOW + 151,
            },
        )
        .await?;

    // Something new came while the wake was being sent: the row stays, due
    // after the interval.
    storage.queue_wakes(&[(ada, NOW + 200)]).await?;
    assert_eq!(
        storage
            .claim_wakes(NOW + 200, NOW + 260, 10, 30)
            .await?
            .len(),
        1
    );
    storage.queue_wakes(&[(ada, NOW + 201)]).await?;
    storage
        .settle_wake(
            ada,
            &WakeOutcome::Sent {
                now: NOW + 202,
                next_due: NOW + 232,
            },
        )
        .await?;
    assert_eq!(storage.next_wake_due().await?, Some(NOW + 232));
    let next = storage.claim_wakes(NOW + 232, NOW + 292, 10, 30).await?;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].attempts, 1, "a fresh wake");
    storage.settle_wake(ada, &WakeOutcome::Dropped).await?;
    assert_eq!(storage.next_wake_due().await?, None, "given up");
    assert!(
        storage
            .push_target(ada)
            .await?
            .expect("kept")
            .dead_at
            .is_none()
    );
    Ok(())
}

async fn racing_claimers_never_share_a_wake(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let mut devices = Vec::new();
    for _ in 0..40 {
        let device = device(storage.as_ref()).await?;
        storage.put_push_target(device, b"sealed", NOW).await?;
        devices.push((device, NOW));
    }
    storage.queue_wakes(&devices).await?;
    let claimers = (0..8).map(|_| {
        let storage = storage.clone();
        tokio::spawn(async move { storage.claim_wakes(NOW, NOW + 60, 7, 30).await })
    });
    let mut seen = HashSet::new();
    let mut total = 0;
    for claimer in claimers {
        for wake in claimer.await?? {
            total += 1;
            assert!(seen.insert(wake.device_id), "a wake claimed twice");
        }
    }
    assert_eq!(total, 40, "every wake claimed once");
    Ok(())
}
