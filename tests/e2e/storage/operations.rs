//! The database as a whole: which it is, that it answers, closing it,
//! sweeping what expired, and events between server nodes.

use super::{NOW, circle_of, device, open};
use anyhow::Result;
use hearth_server::crypto::{random_uuid, sha256};
use hearth_server::storage::{
    AddedDevice, Backend, NewCommit, NewInvite, NewKeyPackage, NewMessage,
};
use hearth_tests::{Db, TestDb, on_both_databases, on_postgres, rand_bytes};
use std::time::Duration;

on_both_databases!(
    the_database_says_what_it_is_answers_and_closes,
    the_sweeper_purges_delivery_rows_past_their_time,
    events_reach_the_other_nodes_on_postgres,
    a_new_generation_renames_the_log_and_every_circle_jumps_ahead,
);

on_postgres!(after_its_connections_drop_a_node_listens_again_and_uses_none_that_died);

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

/// PostgreSQL restarts, as one node sees it (through a link the scenario
/// cuts: every connection drops, and for a moment none can be made). The
/// node's listener says at once that notices may have been lost, listens
/// again within seconds of the database's return, and the pooled
/// connections that died while idle are replaced before use: the next
/// queries all succeed.
async fn after_its_connections_drop_a_node_listens_again_and_uses_none_that_died(
    db: Db,
) -> Result<()> {
    use hearth_server::storage::{Notice, Operations as _};
    let test_db = TestDb::create(db).await?;
    let TestDb::Postgres(url) = &test_db else {
        anyhow::bail!("a link needs PostgreSQL");
    };
    let link = hearth_tests::pg_link::PgLink::start(url).await?;
    let node = std::sync::Arc::new(
        hearth_server::storage::postgres::PgStorage::connect(&link.url, 4).await?,
    );
    let other = test_db.storage().await?;
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let listening = node.clone();
    let listener = tokio::spawn(async move {
        listening
            .listen(Box::new(move |line| {
                let _ = heard_tx.send(line);
            }))
            .await
    });
    let circle = hearth_protocol::CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    let said = Notice::Circle(circle).encode();
    heard_from(&other, &said, &mut heard).await?;
    // Four connections busy at once, then idle in the pool.
    for answer in futures_util::future::join_all((0..4).map(|_| node.ping())).await {
        answer?;
    }

    link.cut();
    let missed = tokio::time::timeout(Duration::from_secs(5), heard.recv()).await?;
    assert_eq!(missed.as_deref(), Some(Notice::Missed.encode().as_str()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = tokio::time::Instant::now();
    link.mend();
    let listening_again = heard_from(&other, &said, &mut heard).await?;
    assert!(
        listening_again - back < Duration::from_secs(3),
        "listening {:?} after the database came back",
        listening_again - back
    );
    for n in 0..8 {
        node.ping()
            .await
            .map_err(|err| anyhow::anyhow!("query {n} after the return: {err}"))?;
    }
    listener.abort();
    Ok(())
}

/// Has `other` say `said` every 100 ms until the listener hears it (within
/// 5 s); when it did.
async fn heard_from(
    other: &std::sync::Arc<dyn hearth_server::storage::Storage>,
    said: &str,
    heard: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Result<tokio::time::Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < deadline {
        other.notify(said).await?;
        let wait = tokio::time::sleep(Duration::from_millis(100));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                line = heard.recv() => if line.as_deref() == Some(said) {
                    return Ok(tokio::time::Instant::now());
                },
                () = &mut wait => break,
            }
        }
    }
    anyhow::bail!("the node never heard the other")
}

/// The database names its log (a generation). Marking it as a backup keeps
/// the name; beginning a generation (after a restore) gives it a new one,
/// clears the mark, counts the restore, and moves every circle's numbers
/// ahead by the jump: the next message gets a number no client has seen.
async fn a_new_generation_renames_the_log_and_every_circle_jumps_ahead(db: Db) -> Result<()> {
    use hearth_server::storage::{AppendOutcome, GENERATION_JUMP};
    let (_db, storage) = open(db).await?;
    let first = storage.instance().await?;
    assert_eq!(first.generation.len(), 32, "{first:?}");
    assert!(first.generation.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!first.from_backup);
    assert_eq!(first.restores, 0);

    let facilitator = device(storage.as_ref()).await?;
    let busy = circle_of(storage.as_ref(), facilitator).await?;
    let quiet = circle_of(storage.as_ref(), facilitator).await?;
    let send = |text: &'static [u8]| NewMessage {
        circle: busy.clone(),
        sender: facilitator,
        message_id: random_uuid().unwrap(),
        epoch: 0,
        ciphertext: text.to_vec(),
        digest: sha256(text),
        now: NOW,
    };
    storage
        .append_messages(&[send(b"one"), send(b"two")], 5)
        .await?;

    storage.mark_as_backup().await?;
    let marked = storage.instance().await?;
    assert!(marked.from_backup);
    assert_eq!(
        marked.generation, first.generation,
        "a mark renames nothing"
    );

    let begun = storage
        .begin_generation("0123456789abcdef0123456789abcdef", GENERATION_JUMP)
        .await?;
    assert_eq!(begun.generation, "0123456789abcdef0123456789abcdef");
    assert!(!begun.from_backup);
    assert_eq!(begun.restores, 1);
    assert_eq!(storage.instance().await?, begun);
    let last = |circle: hearth_protocol::CircleId| {
        let storage = storage.clone();
        async move {
            let record = storage.circle(&circle).await?;
            anyhow::Ok(record.map(|c| c.last_seq))
        }
    };
    assert_eq!(last(busy.clone()).await?, Some(2 + GENERATION_JUMP));
    assert_eq!(last(quiet.clone()).await?, Some(GENERATION_JUMP));
    let next = storage.append_messages(&[send(b"three")], 5).await?;
    assert!(
        matches!(next[..], [AppendOutcome::Accepted { seq, .. }] if seq == 3 + GENERATION_JUMP),
        "{next:?}"
    );
    Ok(())
}
