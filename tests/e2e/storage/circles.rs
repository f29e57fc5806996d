//! Circles: creation, commits as an epoch compare-and-swap with the roster
//! change and Welcomes in the same transaction, the gap-free log with
//! idempotent sends, reading after a cursor, acknowledgement, GroupInfo.

use super::{NOW, circle_of, device, open};
use anyhow::Result;
use hearth_protocol::circles::{EntryKind, Role};
use hearth_protocol::{CircleId, DeviceId};
use hearth_server::crypto::{random_uuid, sha256};
use hearth_server::storage::{
    Acknowledgement, AddedDevice, AppendOutcome, CommitOutcome, NewCircle, NewCommit, NewMessage,
    Storage, StorageError,
};
use hearth_tests::{Db, on_both_databases, rand_bytes};

on_both_databases!(
    a_circle_starts_at_epoch_zero_with_its_creator_facilitating,
    a_commit_lands_only_at_the_current_epoch_with_its_roster_change_and_welcomes,
    messages_take_gap_free_numbers_and_a_resend_keeps_its_own,
    a_batch_of_sends_commits_together_and_each_is_judged_as_if_alone,
    a_batch_given_up_halfway_is_all_or_nothing_and_the_next_one_lands,
    a_device_reads_only_what_came_after_it_joined_in_pages,
    entries_every_device_acknowledged_are_deleted,
    a_batch_of_acknowledgements_is_one_write_and_deletes_only_what_all_read,
);

/// One acknowledgement alone: whether the device was on the roster.
async fn ack(storage: &dyn Storage, circle: &CircleId, device: DeviceId, seq: i64) -> Result<bool> {
    let answers = storage
        .acknowledge(&[Acknowledgement {
            circle: circle.clone(),
            device,
            seq,
        }])
        .await?;
    anyhow::ensure!(answers.len() == 1, "one answer for one acknowledgement");
    Ok(answers[0])
}

fn commit(sender: DeviceId, epoch: i64) -> NewCommit {
    NewCommit {
        sender,
        epoch,
        commit: rand_bytes::<48>().to_vec(),
        welcome: None,
        group_info: None,
        added: Vec::new(),
        removed: Vec::new(),
        join_request: None,
        now: NOW,
    }
}

fn message(circle: &CircleId, sender: DeviceId, epoch: i64, text: &[u8]) -> NewMessage {
    NewMessage {
        circle: circle.clone(),
        sender,
        message_id: random_uuid().unwrap(),
        epoch,
        ciphertext: text.to_vec(),
        digest: sha256(text),
        now: NOW,
    }
}

/// Appends one message alone (a batch of one).
async fn append(storage: &dyn Storage, message: &NewMessage, window: i64) -> Result<AppendOutcome> {
    let outcomes = storage
        .append_messages(std::slice::from_ref(message), window)
        .await?;
    assert_eq!(outcomes.len(), 1, "one outcome per message");
    Ok(outcomes[0])
}

/// A circle whose creator has added `members` in one commit (at seq 1).
async fn circle_with(
    storage: &dyn Storage,
    members: usize,
) -> Result<(CircleId, DeviceId, Vec<DeviceId>)> {
    let facilitator = device(storage).await?;
    let circle = circle_of(storage, facilitator).await?;
    let mut added = Vec::new();
    for _ in 0..members {
        added.push(AddedDevice {
            device_id: device(storage).await?,
            role: Role::Member,
            welcome_id: random_uuid()?,
        });
    }
    let mut add = commit(facilitator, 0);
    add.welcome = Some(b"welcome".to_vec());
    add.added = added.clone();
    storage.apply_commit(&circle, &add).await?;
    Ok((
        circle,
        facilitator,
        added.into_iter().map(|a| a.device_id).collect(),
    ))
}

async fn a_circle_starts_at_epoch_zero_with_its_creator_facilitating(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let creator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), creator).await?;
    let again = NewCircle {
        id: circle.clone(),
        max_members: 3,
        retention_secs: 60,
        group_info: None,
        created_at: NOW,
    };
    let refused = storage.create_circle(&again, creator).await;
    assert!(matches!(refused, Err(StorageError::CircleExists)));

    let stored = storage.circle(&circle).await?.expect("stored");
    assert_eq!((stored.epoch, stored.last_seq), (0, 0));
    assert_eq!((stored.max_members, stored.retention_secs), (12, 24 * 3600));
    assert_eq!(stored.roster.len(), 1);
    let facilitator = stored.member(creator).expect("on the roster");
    assert_eq!(facilitator.role, Role::Facilitator);
    assert_eq!((facilitator.joined_seq, facilitator.acked_seq), (0, 0));
    assert_eq!(
        storage
            .group_info(&circle)
            .await?
            .map(|g| (g.epoch, g.group_info)),
        Some((0, b"group info at epoch 0".to_vec()))
    );

    let elsewhere = device(storage.as_ref()).await?;
    let ids = |circles: Vec<hearth_server::storage::CircleRecord>| {
        circles.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(storage.device_circles(creator).await?), [circle]);
    assert!(ids(storage.device_circles(elsewhere).await?).is_empty());
    let made_up = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    assert!(storage.circle(&made_up).await?.is_none());
    assert!(storage.group_info(&made_up).await?.is_none());
    Ok(())
}

async fn a_commit_lands_only_at_the_current_epoch_with_its_roster_change_and_welcomes(
    db: Db,
) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    let (sam, welcome_id) = (device(storage.as_ref()).await?, random_uuid()?);

    let mut add = commit(facilitator, 0);
    add.welcome = Some(b"welcome for sam".to_vec());
    add.group_info = Some(b"group info at epoch 1".to_vec());
    add.added = vec![AddedDevice {
        device_id: sam,
        role: Role::Member,
        welcome_id,
    }];
    assert_eq!(
        storage.apply_commit(&circle, &add).await?,
        CommitOutcome::Accepted { seq: 1, epoch: 1 }
    );
    let stored = storage.circle(&circle).await?.expect("stored");
    let member = stored.member(sam).expect("sam is on the roster");
    assert_eq!((member.role, member.joined_seq), (Role::Member, 1));
    assert_eq!(
        storage
            .group_info(&circle)
            .await?
            .map(|g| (g.epoch, g.group_info)),
        Some((1, b"group info at epoch 1".to_vec()))
    );
    let welcomes = storage.welcomes(sam).await?;
    assert_eq!(welcomes.len(), 1);
    let welcome = &welcomes[0];
    assert_eq!(
        (welcome.id, &welcome.circle_id, welcome.seq, welcome.epoch),
        (welcome_id, &circle, 1, 1)
    );
    assert_eq!(welcome.data, b"welcome for sam");
    assert!(
        !storage.delete_welcome(facilitator, welcome_id).await?,
        "not another device's"
    );
    assert!(storage.delete_welcome(sam, welcome_id).await?);
    assert!(!storage.delete_welcome(sam, welcome_id).await?, "once");
    assert!(storage.welcomes(sam).await?.is_empty());

    // A commit made at epoch 0 arrives late; nothing of it lands.
    let late = commit(sam, 0);
    assert_eq!(
        storage.apply_commit(&circle, &late).await?,
        CommitOutcome::Stale { current_epoch: 1 }
    );
    let made_up = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    assert_eq!(
        storage.apply_commit(&made_up, &late).await?,
        CommitOutcome::NoCircle
    );

    // Sam leaves; without a GroupInfo the last one is kept.
    let mut leave = commit(sam, 1);
    leave.removed = vec![sam];
    assert_eq!(
        storage.apply_commit(&circle, &leave).await?,
        CommitOutcome::Accepted { seq: 2, epoch: 2 }
    );
    assert!(
        storage
            .circle(&circle)
            .await?
            .expect("stored")
            .member(sam)
            .is_none()
    );
    assert!(storage.device_circles(sam).await?.is_empty());
    assert_eq!(
        storage
            .group_info(&circle)
            .await?
            .map(|g| (g.epoch, g.group_info)),
        Some((2, b"group info at epoch 1".to_vec()))
    );
    Ok(())
}

async fn messages_take_gap_free_numbers_and_a_resend_keeps_its_own(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (circle, facilitator, members) = circle_with(storage.as_ref(), 1).await?;
    let window = 5;
    let first = message(&circle, facilitator, 1, b"first");
    assert_eq!(
        append(storage.as_ref(), &first, window).await?,
        AppendOutcome::Accepted { seq: 2, epoch: 1 }
    );
    assert_eq!(
        append(
            storage.as_ref(),
            &message(&circle, members[0], 1, b"second"),
            window
        )
        .await?,
        AppendOutcome::Accepted { seq: 3, epoch: 1 }
    );
    assert_eq!(
        append(storage.as_ref(), &first, window).await?,
        AppendOutcome::Repeated { seq: 2, epoch: 1 },
        "the same id and bytes: the original number"
    );
    let changed = NewMessage {
        ciphertext: b"other bytes".to_vec(),
        digest: sha256(b"other bytes"),
        ..first.clone()
    };
    assert_eq!(
        append(storage.as_ref(), &changed, window).await?,
        AppendOutcome::Conflict
    );
    assert_eq!(
        append(
            storage.as_ref(),
            &message(&circle, facilitator, 2, b"future"),
            window
        )
        .await?,
        AppendOutcome::Stale { current_epoch: 1 }
    );
    let stranger = device(storage.as_ref()).await?;
    assert_eq!(
        append(
            storage.as_ref(),
            &message(&circle, stranger, 1, b"intruder"),
            window
        )
        .await?,
        AppendOutcome::NotMember
    );
    let made_up = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    assert_eq!(
        append(
            storage.as_ref(),
            &message(&made_up, facilitator, 1, b"nowhere"),
            window
        )
        .await?,
        AppendOutcome::NotMember
    );

    // Seven commits later, epoch 1 is outside a window of five.
    for epoch in 1..8 {
        storage
            .apply_commit(&circle, &commit(facilitator, epoch))
            .await?;
    }
    assert_eq!(
        append(
            storage.as_ref(),
            &message(&circle, facilitator, 1, b"too old"),
            window
        )
        .await?,
        AppendOutcome::Stale { current_epoch: 8 }
    );
    assert_eq!(
        append(
            storage.as_ref(),
            &message(&circle, facilitator, 3, b"just in"),
            window
        )
        .await?,
        AppendOutcome::Accepted { seq: 11, epoch: 8 },
        "numbers stay gap-free across refusals"
    );
    let log = storage
        .read_log(&circle, facilitator, 0, 100)
        .await?
        .expect("member");
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
    Ok(())
}

async fn a_batch_of_sends_commits_together_and_each_is_judged_as_if_alone(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (tuesday, facilitator, members) = circle_with(storage.as_ref(), 1).await?;
    let sam = members[0];
    let kai = device(storage.as_ref()).await?;
    let thursday = circle_of(storage.as_ref(), kai).await?;
    let earlier = message(&tuesday, sam, 1, b"sent before the batch");
    append(storage.as_ref(), &earlier, 5).await?;
    let hello = message(&tuesday, facilitator, 1, b"hello");
    let stranger = device(storage.as_ref()).await?;
    let batch = vec![
        hello.clone(),
        message(&thursday, kai, 0, b"thursday's first"),
        message(&tuesday, sam, 1, b"sam answers"),
        // The same send twice in one batch (a retry racing its original).
        hello.clone(),
        NewMessage {
            ciphertext: b"other bytes".to_vec(),
            digest: sha256(b"other bytes"),
            ..earlier.clone()
        },
        message(&tuesday, stranger, 1, b"intruder"),
        message(&thursday, kai, 3, b"from the future"),
        message(&thursday, kai, 0, b"thursday's second"),
        earlier.clone(),
    ];
    let outcomes = storage.append_messages(&batch, 5).await?;
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Accepted { seq: 3, epoch: 1 },
            AppendOutcome::Accepted { seq: 1, epoch: 0 },
            AppendOutcome::Accepted { seq: 4, epoch: 1 },
            AppendOutcome::Repeated { seq: 3, epoch: 1 },
            AppendOutcome::Conflict,
            AppendOutcome::NotMember,
            AppendOutcome::Stale { current_epoch: 0 },
            AppendOutcome::Accepted { seq: 2, epoch: 0 },
            AppendOutcome::Repeated { seq: 2, epoch: 1 },
        ],
        "outcomes in the order given; each circle numbers its own in that order"
    );
    let texts = |log: Vec<hearth_server::storage::LogRecord>| -> Vec<(i64, Vec<u8>)> {
        log.into_iter().map(|e| (e.seq, e.ciphertext)).collect()
    };
    assert_eq!(
        texts(
            storage
                .read_log(&tuesday, sam, 1, 100)
                .await?
                .expect("member")
        ),
        [
            (2, b"sent before the batch".to_vec()),
            (3, b"hello".to_vec()),
            (4, b"sam answers".to_vec())
        ]
    );
    assert_eq!(
        texts(
            storage
                .read_log(&thursday, kai, 0, 100)
                .await?
                .expect("member")
        ),
        [
            (1, b"thursday's first".to_vec()),
            (2, b"thursday's second".to_vec())
        ]
    );
    assert_eq!(
        storage
            .append_messages(&[batch[5].clone(), batch[6].clone()], 5)
            .await?,
        [
            AppendOutcome::NotMember,
            AppendOutcome::Stale { current_epoch: 0 }
        ],
        "a batch of refusals writes nothing"
    );
    assert_eq!(
        append(storage.as_ref(), &message(&thursday, kai, 0, b"third"), 5).await?,
        AppendOutcome::Accepted { seq: 3, epoch: 0 },
        "and leaves no gap"
    );
    assert!(storage.append_messages(&[], 5).await?.is_empty());
    Ok(())
}

async fn a_batch_given_up_halfway_is_all_or_nothing_and_the_next_one_lands(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (tuesday, facilitator, members) = circle_with(storage.as_ref(), 1).await?;
    let sam = members[0];
    // The caller stops waiting at every point of a batch's life: before it
    // begins, between its read and its writes, during its commit.
    for wait in 0..60_u64 {
        let batch = [
            message(&tuesday, facilitator, 1, b"first of two"),
            message(&tuesday, sam, 1, b"second of two"),
        ];
        let _ = tokio::time::timeout(
            std::time::Duration::from_micros(wait * 25),
            storage.append_messages(&batch, 5),
        )
        .await;
    }
    let after = append(storage.as_ref(), &message(&tuesday, sam, 1, b"after"), 5).await?;
    let log = storage
        .read_log(&tuesday, sam, 1, 1000)
        .await?
        .expect("member");
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (2..2 + seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "numbers stay gap-free");
    assert_eq!(
        after,
        AppendOutcome::Accepted {
            seq: *seqs.last().expect("the last send"),
            epoch: 1
        },
        "the next send lands after whatever was committed"
    );
    let pairs = &log[..log.len() - 1];
    assert!(
        pairs.len() % 2 == 0
            && pairs
                .chunks(2)
                .all(|pair| pair[0].ciphertext == b"first of two"
                    && pair[1].ciphertext == b"second of two"),
        "each batch was committed whole or not at all"
    );
    // Other writes go through the same connection and still work.
    assert!(matches!(
        storage
            .apply_commit(&tuesday, &commit(facilitator, 1))
            .await?,
        CommitOutcome::Accepted { .. }
    ));
    Ok(())
}

async fn a_device_reads_only_what_came_after_it_joined_in_pages(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    append(
        storage.as_ref(),
        &message(&circle, facilitator, 0, b"before sam"),
        5,
    )
    .await?;
    let sam = device(storage.as_ref()).await?;
    let mut add = commit(facilitator, 0);
    add.welcome = Some(b"welcome".to_vec());
    add.added = vec![AddedDevice {
        device_id: sam,
        role: Role::Member,
        welcome_id: random_uuid()?,
    }];
    storage.apply_commit(&circle, &add).await?;
    for text in [b"one", b"two", b"six"] {
        append(storage.as_ref(), &message(&circle, sam, 1, text), 5).await?;
    }

    let everything = storage
        .read_log(&circle, facilitator, 0, 100)
        .await?
        .expect("member");
    assert_eq!(everything.len(), 5);
    assert_eq!(everything[0].ciphertext, b"before sam");
    assert_eq!(
        (
            everything[1].kind,
            everything[1].sender,
            everything[1].epoch
        ),
        (EntryKind::Commit, facilitator, 0)
    );
    let last = &everything[4];
    assert_eq!(
        (
            last.seq,
            last.kind,
            last.sender,
            last.epoch,
            last.created_at
        ),
        (5, EntryKind::Application, sam, 1, NOW)
    );

    let sams = storage
        .read_log(&circle, sam, 0, 100)
        .await?
        .expect("member");
    assert_eq!(
        sams.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4, 5],
        "nothing from before the commit that added sam"
    );
    let page = storage
        .read_log(&circle, facilitator, 1, 2)
        .await?
        .expect("member");
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    let stranger = device(storage.as_ref()).await?;
    assert!(storage.read_log(&circle, stranger, 0, 100).await?.is_none());
    let servers_own = storage.log_entries(&circle, 0, 2).await?;
    assert_eq!(
        servers_own.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2],
        "the server's own read (for its sockets) sees the whole log, pages alike"
    );
    assert_eq!(servers_own[0].ciphertext, b"before sam");
    Ok(())
}

async fn entries_every_device_acknowledged_are_deleted(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (circle, facilitator, members) = circle_with(storage.as_ref(), 1).await?;
    let sam = members[0];
    for text in [b"a", b"b", b"c"] {
        append(storage.as_ref(), &message(&circle, facilitator, 1, text), 5).await?;
    }
    assert!(ack(storage.as_ref(), &circle, facilitator, 4).await?);
    assert_eq!(
        storage
            .read_log(&circle, sam, 0, 100)
            .await?
            .expect("member")
            .len(),
        3,
        "sam has not read them: they stay"
    );
    assert!(ack(storage.as_ref(), &circle, sam, 3).await?);
    let left = storage
        .read_log(&circle, facilitator, 0, 100)
        .await?
        .expect("member");
    assert_eq!(
        left.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [4],
        "what both read is gone"
    );
    assert!(ack(storage.as_ref(), &circle, sam, 99).await?);
    let roster = storage.circle(&circle).await?.expect("stored").roster;
    let acked = roster
        .iter()
        .find(|r| r.device_id == sam)
        .expect("sam")
        .acked_seq;
    assert_eq!(
        acked, 4,
        "an acknowledgement past the end counts up to the end"
    );
    assert!(
        storage
            .read_log(&circle, facilitator, 0, 100)
            .await?
            .expect("member")
            .is_empty()
    );
    assert!(
        ack(storage.as_ref(), &circle, facilitator, 2).await?,
        "going back is a no-op"
    );
    let stranger = device(storage.as_ref()).await?;
    assert!(!ack(storage.as_ref(), &circle, stranger, 4).await?);
    Ok(())
}

async fn a_batch_of_acknowledgements_is_one_write_and_deletes_only_what_all_read(
    db: Db,
) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let (tuesday, facilitator, members) = circle_with(storage.as_ref(), 2).await?;
    let (sam, kim) = (members[0], members[1]);
    let thursday = circle_of(storage.as_ref(), facilitator).await?;
    for text in [b"a", b"b", b"c"] {
        append(
            storage.as_ref(),
            &message(&tuesday, facilitator, 1, text),
            5,
        )
        .await?;
        append(
            storage.as_ref(),
            &message(&thursday, facilitator, 0, text),
            5,
        )
        .await?;
    }
    let stranger = device(storage.as_ref()).await?;
    let acks = |list: &[(&CircleId, DeviceId, i64)]| -> Vec<Acknowledgement> {
        list.iter()
            .map(|(circle, device, seq)| Acknowledgement {
                circle: (*circle).clone(),
                device: *device,
                seq: *seq,
            })
            .collect()
    };
    // Sam and Kim in Tuesday's circle, the facilitator in both, a stranger:
    // answered in the order asked, the stranger refused.
    let answers = storage
        .acknowledge(&acks(&[
            (&tuesday, sam, 5),
            (&thursday, facilitator, 2),
            (&tuesday, stranger, 5),
            (&tuesday, kim, 3),
            (&tuesday, facilitator, 5),
        ]))
        .await?;
    assert_eq!(answers, [true, true, false, true, true]);
    let tuesday_left = storage
        .read_log(&tuesday, facilitator, 0, 100)
        .await?
        .expect("member");
    assert_eq!(
        tuesday_left.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [4],
        "Kim has not read 4: it stays for everyone; what all three read is gone"
    );
    let thursday_left = storage
        .read_log(&thursday, facilitator, 0, 100)
        .await?
        .expect("member");
    assert_eq!(
        thursday_left.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3],
        "the facilitator alone on Thursday's roster read up to 2"
    );
    // The same device twice in one batch: the higher number holds.
    let answers = storage
        .acknowledge(&acks(&[(&tuesday, kim, 4), (&tuesday, kim, 2)]))
        .await?;
    assert_eq!(answers, [true, true]);
    assert!(
        storage
            .read_log(&tuesday, facilitator, 0, 100)
            .await?
            .expect("member")
            .is_empty(),
        "all three read everything"
    );
    assert!(storage.acknowledge(&[]).await?.is_empty());
    Ok(())
}
