//! What each action costs a phone, in requests, counted at the server
//! (`hearth_http_requests_total`): a change that adds a round trip to a hot
//! path fails here. Wall time over a slow link is the benchmark's
//! (`hearth-bench --link`); request counts do not depend on the delay.

use anyhow::{Result, ensure};
use hearth_client::{Client, NotificationKind};
use hearth_tests::clients::{biweekly_series, client, data_dirs, enrolled, join};
use hearth_tests::slow_link::SlowLink;
use hearth_tests::{Db, TestApp, on_both_databases};
use std::future::Future;
use std::time::Duration;

on_both_databases!(
    a_phone_sends_reads_and_wakes_in_one_request_each,
    a_wake_catches_up_two_circles_and_joins_a_third_in_two_requests,
    registering_joining_approving_and_scheduling_take_at_most_three_requests,
    answers_lost_to_a_dropped_connection_leave_everyone_in_step_and_every_message_once,
    with_its_socket_open_a_phone_sends_without_an_http_request,
    a_woken_phone_shows_who_said_what_in_which_circle_once,
    an_app_that_stops_listening_leaves_what_comes_next_to_its_extension,
    a_wake_out_of_time_shows_what_it_read_and_the_next_shows_the_rest,
    a_wake_while_the_app_holds_the_directory_is_busy_and_changes_nothing,
);

/// The requests the server answered while `action` ran, and its value.
async fn requests<T, E>(
    app: &TestApp,
    action: impl Future<Output = std::result::Result<T, E>>,
) -> Result<(T, u32)>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let before = app.counter("hearth_http_requests_total").await?;
    let value = action.await?;
    let after = app.counter("hearth_http_requests_total").await?;
    // `after` counts the read that took `before`.
    let counted = after - before - 1.0;
    ensure!(counted >= 0.0, "the counter went back");
    Ok((value, counted as u32))
}

async fn a_phone_sends_reads_and_wakes_in_one_request_each(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam, kim] = &clients[..] else {
        anyhow::bail!("three clients")
    };

    // Sam sends with nothing new in the circle: one request.
    let (_, sent) = requests(&app, sam.send_text(&circle, "see you Thursday")).await?;
    assert_eq!(sent, 1, "a send is one request");

    // Alice reads it, then reads again with nothing new: one request each.
    let (read, cost) = requests(&app, alice.sync(&circle)).await?;
    assert_eq!((read.len(), cost), (1, 1), "a read with one new message");
    let (read, cost) = requests(&app, alice.sync(&circle)).await?;
    assert_eq!((read.len(), cost), (0, 1), "a read with nothing new");

    // Twenty more: still one request to read them all.
    for n in 0..20 {
        sam.send_text(&circle, &format!("message {n}")).await?;
    }
    let (read, cost) = requests(&app, alice.sync(&circle)).await?;
    assert_eq!((read.len(), cost), (20, 1), "a read of twenty");

    // Kim's phone is woken: everything in one request, then nothing new in
    // one more.
    let (woken, cost) = requests(&app, kim.on_wake()).await?;
    assert_eq!(woken.new_messages, [(circle.clone(), 21)]);
    assert_eq!(cost, 1, "a wake with news");
    let (woken, cost) = requests(&app, kim.on_wake()).await?;
    assert!(woken.new_messages.is_empty());
    assert_eq!(cost, 1, "a wake with nothing new");
    Ok(())
}

async fn a_wake_catches_up_two_circles_and_joins_a_third_in_two_requests(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (alice, kim) = (client(&app, &dirs[0]).await?, client(&app, &dirs[1]).await?);
    alice.register(None).await?;
    kim.register(None).await?;
    kim.set_display_name("Kim").await?;
    let mut circles = Vec::new();
    for _ in 0..3 {
        circles.push(alice.create_circle().await?);
    }
    join(&alice, &kim, &circles[0]).await?;
    join(&alice, &kim, &circles[1]).await?;
    kim.on_wake().await?;
    // While Kim's phone sleeps: news in two circles, and Alice lets Kim
    // into a third (its Welcome waits).
    alice.send_text(&circles[0], "Tuesday is moved").await?;
    alice.send_text(&circles[1], "welcome, all").await?;
    let link = alice.create_invite(&circles[2]).await?;
    let request = kim.redeem_invite(&link, "hello").await?;
    alice.approve(&circles[2], request).await?;

    // One sync brings both circles, the Welcome and the third circle's log;
    // the second request is Kim telling the new circle its name.
    let (woken, cost) = requests(&app, kim.on_wake()).await?;
    assert_eq!(woken.joined, [circles[2].clone()]);
    let mut news = woken.new_messages.clone();
    news.sort();
    let mut expected = vec![(circles[0].clone(), 1), (circles[1].clone(), 1)];
    expected.sort();
    assert_eq!(news, expected);
    assert_eq!(cost, 2, "a wake with two circles' news and a Welcome");
    alice.sync(&circles[2]).await?;
    let names = alice.names(&circles[2]).await?;
    assert!(
        names.values().any(|n| n == "Kim"),
        "Alice learns Kim's name"
    );
    Ok(())
}

async fn registering_joining_approving_and_scheduling_take_at_most_three_requests(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (alice, sam) = (client(&app, &dirs[0]).await?, client(&app, &dirs[1]).await?);
    let (_, cost) = requests(&app, alice.register(None)).await?;
    assert_eq!(
        cost, 3,
        "register: a challenge, the registration (with a login), KeyPackages"
    );
    sam.register(None).await?;
    let (circle, cost) = requests(&app, alice.create_circle()).await?;
    assert_eq!(cost, 1, "create a circle");
    let (link, cost) = requests(&app, alice.create_invite(&circle)).await?;
    assert_eq!(cost, 1, "invite");
    let (request, cost) = requests(&app, sam.redeem_invite(&link, "hi")).await?;
    assert_eq!(cost, 1, "ask to join");
    // Approving: the claim (naming the request), the commit, the snapshot
    // the newcomer reads the calendar from.
    let (_, cost) = requests(&app, alice.approve(&circle, request)).await?;
    assert_eq!(cost, 3, "approve");
    let (joined, cost) = requests(&app, sam.accept_welcomes()).await?;
    assert_eq!(
        (joined, cost),
        (vec![circle.clone()], 1),
        "join from the Welcome"
    );
    let series = biweekly_series();
    // Scheduling: the series, and the snapshot.
    let (_, cost) = requests(&app, alice.schedule_series(&circle, series)).await?;
    assert_eq!(cost, 2, "schedule a series");
    Ok(())
}

async fn answers_lost_to_a_dropped_connection_leave_everyone_in_step_and_every_message_once(
    app: TestApp,
) -> Result<()> {
    // Everyone's phone talks through one flaky link.
    let link = SlowLink::start(&app.address, Duration::ZERO).await?;
    let dirs = data_dirs(3)?;
    let open = |i: usize| Client::open(&link.address, dirs[i].path());
    let (alice, sam, kim) = (open(0).await?, open(1).await?, open(2).await?);
    for person in [&alice, &sam, &kim] {
        person.register(None).await?;
    }
    let circle = alice.create_circle().await?;
    join(&alice, &sam, &circle).await?;
    join(&alice, &kim, &circle).await?;
    sam.sync(&circle).await?;

    // Alice's key update reaches the server; the connection drops before
    // its answer. Her client cannot know whether it counted.
    link.cut_answer_to("/commits HTTP");
    let lost = alice.update(&circle).await;
    assert!(
        lost.as_ref().is_err_and(|e| e.is_retryable()),
        "the update's answer was lost: {lost:?}"
    );
    // Sam, meanwhile, writes (in the epoch Alice's commit began).
    sam.send_text(&circle, "is everyone there?").await?;
    // Alice's next message: the log shows her commit was taken, so her
    // client merges it and writes in the new epoch.
    alice.send_text(&circle, "yes, here").await?;

    // A message whose answer is lost stays pending and goes out once.
    link.cut_answer_to("/messages HTTP");
    let unanswered = sam.send_text(&circle, "see you Thursday").await;
    assert!(unanswered.is_err_and(|e| e.is_retryable()));
    assert_eq!(sam.outbox().await?.len(), 1, "kept, pending");
    assert_eq!(sam.flush_outbox().await?, 1);
    assert!(sam.outbox().await?.is_empty());

    // A sync (carrying acknowledgements) whose answer is lost is simply
    // asked again.
    link.cut_answer_to("POST /v1/sync HTTP");
    assert!(kim.on_wake().await.is_err_and(|e| e.is_retryable()));
    kim.on_wake().await?;

    // Everyone is in step (one epoch, one authenticator) and has read every
    // message exactly once, in one order.
    let texts = |history: Vec<hearth_client::Message>| -> Vec<String> {
        history
            .into_iter()
            .filter_map(|m| match m.envelope.content {
                hearth_protocol::content::Content::Text { body, .. } => Some(body),
                _ => None,
            })
            .collect()
    };
    let mut seen = Vec::new();
    let mut authenticators = Vec::new();
    for person in [&alice, &sam, &kim] {
        person.sync(&circle).await?;
        seen.push(texts(person.history(&circle).await?));
        authenticators.push(person.epoch_authenticator(&circle).await?);
    }
    let expected = ["is everyone there?", "yes, here", "see you Thursday"];
    for history in &seen {
        assert_eq!(history, &expected, "each once, in order: {seen:?}");
    }
    assert!(
        authenticators.windows(2).all(|w| w[0] == w[1]),
        "one epoch for all"
    );
    assert!(alice.epoch(&circle).await? >= 3, "Alice's update counted");
    Ok(())
}

async fn with_its_socket_open_a_phone_sends_without_an_http_request(app: TestApp) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let mut clients = clients.into_iter().map(std::sync::Arc::new);
    let (Some(alice), Some(sam)) = (clients.next(), clients.next()) else {
        anyhow::bail!("two clients")
    };
    // Sam's app is open: its socket is up.
    let mut events = sam.live();
    let patience = Duration::from_secs(10);
    loop {
        match tokio::time::timeout(patience, events.recv()).await {
            Ok(Some(hearth_client::Event::Connected)) => break,
            Ok(Some(_)) => {}
            _ => anyhow::bail!("Sam's socket never became ready"),
        }
    }
    // The send goes over it: no HTTP request at all.
    let (_, cost) = requests(&app, sam.send_text(&circle, "see you Thursday")).await?;
    assert_eq!(cost, 0, "a send over the open socket");
    // Sam's own view hears it from the socket, and Alice reads it.
    loop {
        match tokio::time::timeout(patience, events.recv()).await {
            Ok(Some(hearth_client::Event::Message { message, .. })) => {
                assert!(matches!(
                    message.envelope.content,
                    hearth_protocol::content::Content::Text { ref body, .. } if body == "see you Thursday"
                ));
                break;
            }
            Ok(Some(_)) => {}
            _ => anyhow::bail!("Sam's socket never showed Sam's message"),
        }
    }
    let read = alice.sync(&circle).await?;
    assert_eq!(read.len(), 1);
    assert_eq!(
        sam.history(&circle).await?.len(),
        1,
        "once in Sam's history"
    );
    Ok(())
}

async fn a_woken_phone_shows_who_said_what_in_which_circle_once(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam, kim] = &clients[..] else {
        anyhow::bail!("three clients")
    };
    alice.set_title(&circle, "Thursday circle").await?;
    sam.set_display_name("Sam").await?;
    // Kim has the app open when Alice schedules the circle: nothing to
    // notify later.
    alice.schedule_series(&circle, biweekly_series()).await?;
    let read = kim.sync(&circle).await?;
    assert!(read.is_empty(), "no conversation yet");

    // Kim's phone is locked. Sam writes; Alice asks for a check-in.
    sam.send_text(&circle, "see you Thursday").await?;
    alice.prompt_check_in(&circle, "How was your week?").await?;

    // The wake: what Kim's notification extension shows, in one request.
    let (shown, cost) = requests(&app, kim.notifications(Duration::from_secs(10))).await?;
    assert_eq!(cost, 1, "one request");
    assert!(shown.complete);
    let lines: Vec<(Option<&str>, Option<&str>, NotificationKind, &str)> = shown
        .items
        .iter()
        .map(|n| {
            (
                n.circle_title.as_deref(),
                n.sender_name.as_deref(),
                n.kind,
                n.preview.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                Some("Thursday circle"),
                Some("Sam"),
                NotificationKind::Message,
                "see you Thursday"
            ),
            (
                Some("Thursday circle"),
                None,
                NotificationKind::CheckIn,
                "How was your week?"
            ),
        ]
    );
    // Shown once: the next wake has nothing, and the app's history has it.
    let again = kim.notifications(Duration::from_secs(10)).await?;
    assert!(again.items.is_empty());
    assert_eq!(kim.history(&circle).await?.len(), 1);
    Ok(())
}

async fn an_app_that_stops_listening_leaves_what_comes_next_to_its_extension(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let alice = &clients[0];
    // Sam's app, on Sam's directory.
    let sam = std::sync::Arc::new(client(&app, &dirs[1]).await?);
    alice.set_display_name("Alice").await?;
    alice.sync(&circle).await?;

    // Sam has the app open: Alice's welcome arrives on its socket.
    let mut live = sam.live();
    alice.send_text(&circle, "welcome, Sam").await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), live.recv()).await? {
            Some(hearth_client::Event::Message { message, .. })
                if message.sender != sam.device_id().await?.unwrap_or(message.sender) =>
            {
                break;
            }
            Some(_) => {}
            None => anyhow::bail!("the stream ended"),
        }
    }
    // Sam puts the phone away: the app stops listening.
    drop(live);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acknowledged = app.counter("hearth_acknowledgements_total").await?;

    alice.schedule_series(&circle, biweekly_series()).await?;
    alice
        .prompt_check_in(&circle, "How are you arriving today?")
        .await?;
    alice.send_text(&circle, "see you Thursday").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.counter("hearth_acknowledgements_total").await?,
        acknowledged,
        "no socket of Sam's takes in what comes after the app stopped listening"
    );

    // The push: the extension shows all three, once.
    let shown = sam.notifications(Duration::from_secs(10)).await?;
    let kinds: Vec<(NotificationKind, &str)> = shown
        .items
        .iter()
        .map(|n| (n.kind, n.preview.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (NotificationKind::Schedule, ""),
            (NotificationKind::CheckIn, "How are you arriving today?"),
            (NotificationKind::Message, "see you Thursday"),
        ]
    );
    assert!(
        sam.notifications(Duration::from_secs(10))
            .await?
            .items
            .is_empty()
    );
    Ok(())
}

/// An extension has seconds, not minutes. With the server's pages at ten
/// entries and thirty-five messages waiting, a wake given no time reads one
/// page (every request it starts, it finishes), shows those ten and says it
/// stopped short; the next wake shows the other twenty-five. Each message
/// once, in order; nothing half-done in between.
async fn a_wake_out_of_time_shows_what_it_read_and_the_next_shows_the_rest(db: Db) -> Result<()> {
    let app = TestApp::spawn_with(db, |c| c.delivery.page_size = 10).await?;
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam] = &clients[..] else {
        anyhow::bail!("two clients")
    };
    for i in 1..=35 {
        alice.send_text(&circle, &format!("line {i}")).await?;
    }

    let first = sam.notifications(Duration::ZERO).await?;
    assert!(!first.complete, "out of time after one page");
    assert_eq!(first.items.len(), 10);
    let rest = sam.notifications(Duration::from_secs(10)).await?;
    assert!(rest.complete);
    let shown: Vec<String> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|n| n.preview.clone())
        .collect();
    let sent: Vec<String> = (1..=35).map(|i| format!("line {i}")).collect();
    assert_eq!(shown, sent, "each once, in order");
    assert_eq!(sam.history(&circle).await?.len(), 35);
    Ok(())
}

/// The app is in the middle of a step (here: its hold on the directory's
/// lease, written as the app's process would) when a push comes. The
/// extension waits its bound, answers Busy and changes nothing — no
/// request, no message taken; once the app's lease runs out (its process
/// frozen or gone), the next wake shows the message.
async fn a_wake_while_the_app_holds_the_directory_is_busy_and_changes_nothing(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam] = &clients[..] else {
        anyhow::bail!("two clients")
    };
    alice.send_text(&circle, "see you Thursday").await?;

    let lease = rusqlite::Connection::open(dirs[1].path().join("lease.db"))?;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    // The app's hold: another holder, a live process, a minute to run.
    lease.execute(
        "INSERT OR REPLACE INTO lease (one, holder, pid, until) VALUES (1, ?1, ?2, ?3)",
        (
            b"the app's client".as_slice(),
            i64::from(std::process::id()),
            now_ms + 60_000,
        ),
    )?;
    sam.set_busy_wait(Duration::from_millis(300)).await?;
    let wake = async {
        Ok::<_, std::convert::Infallible>(sam.notifications(Duration::from_secs(5)).await)
    };
    let (busy, cost) = requests(&app, wake).await?;
    assert!(
        matches!(busy, Err(hearth_client::ClientError::Busy)),
        "{busy:?}"
    );
    assert_eq!(cost, 0, "nothing asked of the server");

    // The app froze with its hold: the lease runs out.
    lease.execute("UPDATE lease SET until = ?1", [now_ms - 1])?;
    let shown = sam.notifications(Duration::from_secs(5)).await?;
    let previews: Vec<&str> = shown.items.iter().map(|n| n.preview.as_str()).collect();
    assert_eq!(previews, ["see you Thursday"]);
    Ok(())
}
