//! The database as a whole: which it is, that it answers, closing it,
//! sweeping what expired, and events between server nodes.

use super::{NOW, circle_of, device, open};
use anyhow::Result;
use hearth_server::crypto::{random_uuid, sha256};
use hearth_server::storage::{
    AddedDevice, Backend, NewCommit, NewInvite, NewKeyPackage, NewMessage,
};
use hearth_tests::{Db, TestDb, on_both_databases, rand_bytes};
use std::time::Duration;

on_both_databases!(
    the_database_says_what_it_is_answers_and_closes,
    the_sweeper_purges_delivery_rows_past_their_time,
    events_reach_the_other_nodes_on_postgres,
);

async fn the_database_says_what_it_is_answers_and_closes(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let expected = match db {
        Db::Sqlite => Backend::Sqlite,
        Db::Postgres => Backend::Postgres,
    };
    assert_eq!(storage.backend(), expected);
    storage.ping().await?;
    storage.close().await;
    assert!(storage.ping().await.is_err(), "closed pools answer nothing");
    Ok(())
}

async fn the_sweeper_purges_delivery_rows_past_their_time(db: Db) -> Result<()> {
    let (test_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?; // a day's retention
    let old = NOW - 2 * 24 * 3600;
    let sam = device(storage.as_ref()).await?;
    let added = NewCommit {
        sender: facilitator,
        epoch: 0,
        commit: b"commit".to_vec(),
        welcome: Some(b"welcome nobody collected".to_vec()),
        group_info: None,
        added: vec![AddedDevice {
            device_id: sam,
            role: hearth_protocol::circles::Role::Member,
            welcome_id: random_uuid()?,
        }],
        removed: Vec::new(),
        join_request: None,
        now: old,
    };
    storage.apply_commit(&circle, &added).await?;
    for (text, at) in [(&b"old"[..], old), (b"new", NOW)] {
        let message = NewMessage {
            circle: circle.clone(),
            sender: facilitator,
            message_id: random_uuid()?,
            epoch: 1,
            ciphertext: text.to_vec(),
            digest: sha256(text),
            now: at,
        };
        storage.append_messages(&[message], 5).await?;
    }
    let expiring = NewKeyPackage {
        hash_ref: rand_bytes::<32>().to_vec(),
        data: b"expiring".to_vec(),
        expires_at: NOW,
        cipher_suite: 1,
    };
    storage
        .store_key_packages(sam, &[expiring], 10, old)
        .await?;
    for (token, expires_at) in [(&b"hit_gone"[..], NOW - 1), (b"hit_valid", NOW + 60)] {
        let invite = NewInvite {
            id: random_uuid()?,
            circle_id: circle.clone(),
            token_hash: sha256(token),
            expires_at,
            max_uses: 1,
            now: old,
        };
        storage.create_invite(&invite).await?;
    }

    let purged = storage.purge_expired(NOW).await?;
    assert_eq!(
        purged.log_entries, 3,
        "the commit, the old message, the Welcome"
    );
    assert_eq!((purged.key_packages, purged.invites), (1, 1));
    let left = storage
        .read_log(&circle, facilitator, 0, 100)
        .await?
        .expect("member");
    assert_eq!(
        left.iter()
            .map(|e| e.ciphertext.as_slice())
            .collect::<Vec<_>>(),
        [b"new"]
    );
    assert!(storage.welcomes(sam).await?.is_empty());
    assert_eq!(storage.invites(&circle).await?.len(), 1);
    let rows = test_db.dump().await?;
    assert!(!rows.iter().any(|r| r.starts_with("key_packages:")));
    Ok(())
}

async fn events_reach_the_other_nodes_on_postgres(db: Db) -> Result<()> {
    let (test_db, node_a) = open(db).await?;
    let node_b = match &test_db {
        TestDb::Sqlite(_) => {
            // One process owns a SQLite file: there is nobody to tell, and
            // listening ends at once.
            node_a.notify("c:nobody").await?;
            let deliver = Box::new(|_: String| {});
            tokio::time::timeout(Duration::from_secs(5), node_a.listen(deliver)).await??;
            return Ok(());
        }
        TestDb::Postgres(_) => test_db.storage().await?,
    };
    let (sender, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::spawn(async move {
        let deliver = Box::new(move |event: String| {
            let _ = sender.send(event);
        });
        node_b.listen(deliver).await
    });
    // Until the listener is subscribed, a notification may go unheard:
    // repeat it until one arrives.
    let mut arrived = None;
    for _ in 0..50 {
        node_a.notify("c:hello").await?;
        if let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(100), heard.recv()).await
        {
            arrived = Some(event);
            break;
        }
    }
    assert_eq!(arrived.as_deref(), Some("c:hello"));

    // A node does not hear itself: its own sockets were told already.
    let (sender, mut heard_by_a) = tokio::sync::mpsc::unbounded_channel();
    let own_listener = tokio::spawn({
        let node_a = node_a.clone();
        async move {
            let deliver = Box::new(move |event: String| {
                let _ = sender.send(event);
            });
            node_a.listen(deliver).await
        }
    });
    let mut subscribed = false;
    for _ in 0..50 {
        node_b_notify(&test_db, "c:ping").await?;
        if let Ok(Some(_)) =
            tokio::time::timeout(Duration::from_millis(100), heard_by_a.recv()).await
        {
            subscribed = true;
            break;
        }
    }
    assert!(subscribed, "node a hears node b");
    while heard_by_a.try_recv().is_ok() {}
    node_a.notify("c:self").await?;
    node_b_notify(&test_db, "c:after").await?;
    let next = tokio::time::timeout(Duration::from_secs(5), heard_by_a.recv()).await?;
    assert_eq!(
        next.as_deref(),
        Some("c:after"),
        "node a skipped its own notification, which was committed first"
    );
    listener.abort();
    own_listener.abort();
    Ok(())
}

/// Notifies from a fresh node (a storage of its own on the same database).
async fn node_b_notify(test_db: &TestDb, event: &str) -> Result<()> {
    let node = test_db.storage().await?;
    node.notify(event).await?;
    node.close().await;
    Ok(())
}
