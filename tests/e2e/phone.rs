//! What each action costs a phone, in requests, counted at the server
//! (`hearth_http_requests_total`): a change that adds a round trip to a hot
//! path fails here. Wall time over a slow link is the benchmark's
//! (`hearth-bench --link`); request counts do not depend on the delay.

use anyhow::{Result, ensure};
use hearth_protocol::schedule::Series;
use hearth_tests::clients::{client, data_dirs, enrolled, join};
use hearth_tests::{Db, TestApp, on_both_databases};
use std::future::Future;

on_both_databases!(
    a_phone_sends_reads_and_wakes_in_one_request_each,
    a_wake_catches_up_two_circles_and_joins_a_third_in_two_requests,
    registering_joining_and_scheduling_take_at_most_three_requests,
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

async fn registering_joining_and_scheduling_take_at_most_three_requests(
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
    // Approving is not yet at its target of three: the join request's
    // devices, the roster, the claim, the commit, the facilitators of the
    // new epoch and the newcomers' snapshot are each a request today.
    let (_, cost) = requests(&app, alice.approve(&circle, request)).await?;
    assert!(cost <= 6, "approve took {cost}");
    let (joined, cost) = requests(&app, sam.accept_welcomes()).await?;
    assert_eq!(
        (joined, cost),
        (vec![circle.clone()], 1),
        "join from the Welcome"
    );
    let series = Series {
        first_date: jiff::civil::date(2027, 1, 5),
        start_time: jiff::civil::time(18, 0, 0, 0),
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 90,
        every_weeks: 2,
        count: Some(6),
        until: None,
        title: None,
        agenda: None,
        video_room: false,
    };
    let (_, cost) = requests(&app, alice.schedule_series(&circle, series)).await?;
    assert!(cost <= 3, "schedule a series took {cost}");
    Ok(())
}
