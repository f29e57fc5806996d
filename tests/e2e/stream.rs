//! Live delivery over the WebSocket: order, resume after a drop, sending over
//! the socket, Welcomes and join requests as they happen, removal and
//! revocation, and wake-ups across two nodes.

use anyhow::{Context as _, Result, bail};
use hearth_protocol::ErrorCode;
use hearth_protocol::circles::SendMessage;
use hearth_protocol::stream::{ClientFrame, ServerFrame};
use hearth_tests::mls::{Member, circle_with};
use hearth_tests::{Db, Stream, TestApp, on_both_databases, on_postgres};
use serde_json::json;
use std::time::Duration;

on_both_databases!(
    live_entries_arrive_in_order_and_a_dropped_client_resumes_exactly_once,
    a_message_sent_over_the_socket_is_answered_and_delivered,
    welcomes_and_join_requests_arrive_as_they_happen,
    removal_and_revocation_cut_a_socket_off_within_a_second,
    a_replayed_refresh_token_closes_that_logins_socket_at_once,
);

on_postgres!(
    an_entry_accepted_on_one_node_reaches_a_socket_on_another,
    after_the_database_comes_back_a_node_delivers_what_another_accepted_meanwhile,
);

const WAIT: Duration = Duration::from_secs(5);

async fn entry(stream: &mut Stream) -> Result<(u64, Vec<u8>)> {
    match stream.next(WAIT).await? {
        Some(ServerFrame::Entry { entry, .. }) => Ok((entry.seq, entry.ciphertext.into_inner())),
        other => bail!("expected an entry, got {other:?}"),
    }
}

async fn live_entries_arrive_in_order_and_a_dropped_client_resumes_exactly_once(
    db: Db,
) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, mut members, circle) = circle_with(&app, 1).await?;
    let sam = &mut members[0];

    let mut stream = app.stream(sam.token()).await?;
    stream.resume(&[(&circle, 1)]).await?;
    for n in 0..10 {
        assert_eq!(
            facilitator
                .send(&app, &circle, &format!("line {n}"))
                .await?
                .status(),
            201
        );
    }
    let mut seen = Vec::new();
    let mut plaintexts = Vec::new();
    for _ in 0..10 {
        let (seq, bytes) = entry(&mut stream).await?;
        seen.push(seq);
        plaintexts.extend(sam.process(&bytes)?);
    }

    // Ten more arrive; the connection drops after five.
    for n in 10..20 {
        facilitator
            .send(&app, &circle, &format!("line {n}"))
            .await?;
    }
    for _ in 0..5 {
        let (seq, bytes) = entry(&mut stream).await?;
        seen.push(seq);
        plaintexts.extend(sam.process(&bytes)?);
    }
    drop(stream);
    for n in 20..25 {
        facilitator
            .send(&app, &circle, &format!("line {n}"))
            .await?;
    }

    // Reconnecting from the last seq seen delivers the rest, once.
    let mut stream = app.stream(sam.token()).await?;
    let last = *seen.last().context("saw something")?;
    stream.resume(&[(&circle, last)]).await?;
    for _ in 0..10 {
        let (seq, bytes) = entry(&mut stream).await?;
        seen.push(seq);
        plaintexts.extend(sam.process(&bytes)?);
    }
    assert!(
        stream.next(Duration::from_millis(300)).await?.is_none(),
        "nothing more, nothing twice"
    );
    assert_eq!(seen, (2..27).collect::<Vec<_>>());
    let expected: Vec<Vec<u8>> = (0..25).map(|n| format!("line {n}").into_bytes()).collect();
    assert_eq!(plaintexts, expected);

    // Without cursors, a circle resumes from what the device acknowledged.
    let ack = app
        .post_json(
            &format!("/v1/circles/{circle}/ack"),
            sam.token(),
            &json!({"seq": 20}),
        )
        .await?;
    assert_eq!(ack.status(), 204);
    let mut stream = app.stream(sam.token()).await?;
    stream.resume(&[]).await?;
    assert_eq!(entry(&mut stream).await?.0, 21);
    Ok(())
}

async fn a_message_sent_over_the_socket_is_answered_and_delivered(app: TestApp) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 1).await?;
    let mut facilitator_stream = app.stream(facilitator.token()).await?;
    facilitator_stream.resume(&[(&circle, 1)]).await?;
    let mut sam_stream = app.stream(members[0].token()).await?;
    sam_stream.resume(&[(&circle, 1)]).await?;

    let message = SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch: members[0].epoch(),
        ciphertext: members[0].encrypt(b"typed on the socket")?,
    };
    let send = ClientFrame::Send {
        request_id: 7,
        circle_id: circle.clone(),
        message: message.clone(),
    };
    sam_stream.send(&send).await?;
    let mut answered = None;
    for _ in 0..2 {
        match sam_stream.next(WAIT).await? {
            Some(ServerFrame::Sent {
                request_id,
                accepted,
                repeated,
            }) => {
                assert_eq!((request_id, repeated), (7, false));
                answered = Some(accepted.seq);
            }
            Some(ServerFrame::Entry { entry, .. }) => {
                assert_eq!(entry.sender, members[0].device.device_id)
            }
            other => bail!("unexpected {other:?}"),
        }
    }
    let seq = answered.context("an answer")?;
    let (got, bytes) = entry(&mut facilitator_stream).await?;
    assert_eq!(got, seq);
    assert_eq!(
        facilitator.process(&bytes)?,
        Some(b"typed on the socket".to_vec())
    );

    // The same frame again repeats; a stale epoch is refused with its code.
    sam_stream.send(&send).await?;
    match sam_stream.next(WAIT).await? {
        Some(ServerFrame::Sent {
            accepted,
            repeated: true,
            ..
        }) => assert_eq!(accepted.seq, seq),
        other => bail!("expected a repeat, got {other:?}"),
    }
    let stale = ClientFrame::Send {
        request_id: 8,
        circle_id: circle.clone(),
        message: SendMessage {
            message_id: uuid::Uuid::new_v4(),
            epoch: 99,
            ciphertext: hearth_tests::opaque_message(&circle, 99, b"from the future").into(),
        },
    };
    sam_stream.send(&stale).await?;
    match sam_stream.next(WAIT).await? {
        Some(ServerFrame::Error {
            request_id: Some(8),
            error,
        }) => {
            assert_eq!(error.code, ErrorCode::StaleEpoch);
            assert_eq!(error.current_epoch, Some(1));
        }
        other => bail!("expected an error, got {other:?}"),
    }
    Ok(())
}

async fn welcomes_and_join_requests_arrive_as_they_happen(app: TestApp) -> Result<()> {
    let (mut facilitator, _, circle) = circle_with(&app, 0).await?;
    let mut facilitator_stream = app.stream(facilitator.token()).await?;
    facilitator_stream.resume(&[(&circle, 0)]).await?;
    let mut sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 2).await?;
    let mut sam_stream = app.stream(sam.token()).await?;
    sam_stream.resume(&[]).await?;

    let invite: hearth_protocol::circles::Invite = app
        .post_json(
            &format!("/v1/circles/{circle}/invites"),
            facilitator.token(),
            &json!({}),
        )
        .await?
        .json()
        .await?;
    app.post_json(
        "/v1/invites/redeem",
        sam.token(),
        &json!({ "token": invite.token }),
    )
    .await?;
    let request = match facilitator_stream.next(WAIT).await? {
        Some(ServerFrame::JoinRequest { join_request, .. }) => join_request,
        other => bail!("expected a join request, got {other:?}"),
    };
    assert_eq!(request.device_ids, vec![sam.device.device_id]);

    let mut bundle = facilitator.add_commit(&app, &[&sam]).await?;
    bundle.join_request_id = Some(request.join_request_id);
    let accepted = facilitator.commit_accepted(&app, &circle, &bundle).await?;
    match sam_stream.next(WAIT).await? {
        Some(ServerFrame::Welcome { welcome }) => {
            assert_eq!(welcome.circle_id, circle);
            assert_eq!(welcome.seq, accepted.seq);
        }
        other => bail!("expected a Welcome, got {other:?}"),
    }
    sam.join(&app).await?;
    // Sam's socket now delivers the circle.
    facilitator.send(&app, &circle, "glad you're here").await?;
    let (_, bytes) = entry(&mut sam_stream).await?;
    assert_eq!(sam.process(&bytes)?, Some(b"glad you're here".to_vec()));
    Ok(())
}

async fn removal_and_revocation_cut_a_socket_off_within_a_second(app: TestApp) -> Result<()> {
    let (mut facilitator, members, circle) = circle_with(&app, 2).await?;
    let mut removed_stream = app.stream(members[0].token()).await?;
    removed_stream.resume(&[(&circle, 1)]).await?;
    let mut revoked_stream = app.stream(members[1].token()).await?;
    revoked_stream.resume(&[(&circle, 1)]).await?;

    let removal = facilitator.remove_commit(&[&members[0]])?;
    facilitator.commit_accepted(&app, &circle, &removal).await?;
    match removed_stream.next(Duration::from_secs(1)).await? {
        Some(ServerFrame::Removed { circle_id }) => assert_eq!(circle_id, circle),
        other => bail!("expected removal within a second, got {other:?}"),
    }
    facilitator
        .send(&app, &circle, "not for the removed")
        .await?;
    assert!(
        removed_stream
            .next(Duration::from_millis(500))
            .await?
            .is_none()
    );

    // The second member's device is revoked (from its own account): its socket closes.
    let started = std::time::Instant::now();
    let revoke = app
        .delete(
            &format!("/v1/devices/{}", members[1].device.device_id),
            members[1].token(),
        )
        .await?;
    assert_eq!(revoke.status(), 204);
    let mut closed = false;
    while started.elapsed() < Duration::from_millis(1500) {
        match revoked_stream.next(Duration::from_millis(200)).await {
            Err(_) => {
                closed = true;
                break;
            }
            Ok(_) => continue,
        }
    }
    assert!(closed, "the revoked device's socket closed");
    assert!(started.elapsed() < Duration::from_millis(1500));
    Ok(())
}

/// Waits (at most `within`) for the server to close the stream.
async fn closes_within(stream: &mut Stream, within: Duration) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if stream.next(Duration::from_millis(100)).await.is_err() {
            return true;
        }
    }
    false
}

async fn a_replayed_refresh_token_closes_that_logins_socket_at_once(app: TestApp) -> Result<()> {
    // No database polling tells the socket: the login's end is an event.
    let (_, tokens) = app.signed_in().await?;
    let mut stream = app.stream(&tokens.access_token).await?;
    stream.resume(&[]).await?;
    assert_eq!(app.refresh(&tokens.refresh_token).await?.status(), 200);
    assert!(
        !closes_within(&mut stream, Duration::from_millis(300)).await,
        "a normal refresh leaves the login alone"
    );
    let replay = app.refresh(&tokens.refresh_token).await?;
    assert_eq!(replay.status(), 401, "a spent token is refused");
    assert!(
        closes_within(&mut stream, Duration::from_secs(1)).await,
        "and the login's socket closes at once"
    );
    Ok(())
}

async fn an_entry_accepted_on_one_node_reaches_a_socket_on_another(db: Db) -> Result<()> {
    let (first, second) = TestApp::two_nodes(db, |_| {}).await?;
    let (mut facilitator, mut members, circle) = circle_with(&first, 1).await?;

    let mut stream = second.stream(members[0].token()).await?;
    stream.resume(&[(&circle, 1)]).await?;
    // Give the second node's listener a moment to be subscribed.
    tokio::time::sleep(Duration::from_millis(200)).await;
    facilitator.send(&first, &circle, "across nodes").await?;
    let (_, bytes) = entry(&mut stream).await?;
    assert_eq!(members[0].process(&bytes)?, Some(b"across nodes".to_vec()));
    Ok(())
}

/// PostgreSQL restarts, as the second node sees it: every connection it has
/// drops, and for a moment it cannot connect again, while the first node
/// (spared) accepts a message in a quiet circle. The notice of that message
/// is lost with the second node's listener. Sam's socket on the second node
/// is told once that the server is unavailable; once the database is back it
/// gets the message within seconds (not at the circle's next message, which
/// may be hours away), and the second node's next requests all succeed: no
/// connection that died in the pool fails one.
async fn after_the_database_comes_back_a_node_delivers_what_another_accepted_meanwhile(
    db: Db,
) -> Result<()> {
    let test_db = hearth_tests::TestDb::create(db).await?;
    let hearth_tests::TestDb::Postgres(url) = &test_db else {
        bail!("two nodes need PostgreSQL");
    };
    let link = hearth_tests::pg_link::PgLink::start(url).await?;
    let behind_link = hearth_tests::TestDb::Postgres(link.url.clone());
    let first = TestApp::start(test_db, |_| {}).await?;
    let second = TestApp::start(behind_link, |_| {}).await?;
    let (mut facilitator, mut members, circle) = circle_with(&first, 1).await?;
    let sam = &mut members[0];

    let mut stream = second.stream(sam.token()).await?;
    stream.resume(&[(&circle, 1)]).await?;
    // Every pooled connection of the second node is busy once, then idle.
    let requests: Vec<_> = (0..5)
        .map(|_| second.get("/v1/devices", sam.token()))
        .collect();
    for answer in futures_util::future::join_all(requests).await {
        assert_eq!(answer?.status(), 200);
    }

    link.cut();
    match stream.next(WAIT).await? {
        Some(ServerFrame::Error { error, .. }) => assert_eq!(error.code, ErrorCode::Unavailable),
        other => bail!("expected word that the server is unavailable, got {other:?}"),
    }
    let sent = facilitator
        .send(&first, &circle, "see you Thursday")
        .await?;
    assert_eq!(sent.status(), 201, "the first node is unaffected");
    tokio::time::sleep(Duration::from_millis(300)).await;
    link.mend();

    let back = std::time::Instant::now();
    let (_, bytes) = entry(&mut stream).await?;
    assert_eq!(sam.process(&bytes)?, Some(b"see you Thursday".to_vec()));
    let took = back.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "delivered {took:?} after the database came back"
    );
    for _ in 0..8 {
        let answer = second.get("/v1/devices", sam.token()).await?;
        assert_eq!(answer.status(), 200, "{}", answer.text().await?);
    }
    assert!(
        stream.next(Duration::from_millis(300)).await?.is_none(),
        "nothing twice"
    );
    Ok(())
}
