//! What each action costs a phone: real SDK clients talk to the in-process
//! server through a slow link (`hearth_tests::slow_link`, every byte held
//! `one_way` in each direction), and for each action the server's request
//! counter (`hearth_http_requests_total`) and the wall time from the call to
//! its return are taken. Request counts do not depend on the delay; wall
//! time does, in round trips.
//!
//! The live delivery figure is the time from the sender's call to the
//! moment another member's live socket hands the message to its app.

use anyhow::{Context as _, Result, ensure};
use hearth_client::{Client, Event};
use hearth_tests::clients::{biweekly_series, data_dirs};
use hearth_tests::slow_link::SlowLink;
use hearth_tests::{Db, TestApp};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One action's cost at one delay.
pub struct Cost {
    /// The action.
    pub action: &'static str,
    /// HTTP requests the server counted.
    pub requests: f64,
    /// Wall time, milliseconds.
    pub ms: f64,
}

/// Counts the server's requests and the wall time of `action`.
async fn cost<T, E>(
    app: &TestApp,
    costs: &mut Vec<Cost>,
    action: &'static str,
    run: impl Future<Output = std::result::Result<T, E>>,
) -> Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let before = app.counter("hearth_http_requests_total").await?;
    let started = Instant::now();
    let value = run.await.with_context(|| action.to_owned())?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let after = app.counter("hearth_http_requests_total").await?;
    // The counter counts a request once it is answered: `after` includes
    // the read that took `before`, which is not the action's.
    costs.push(Cost {
        action,
        requests: after - before - 1.0,
        ms,
    });
    Ok(value)
}

/// Every action over a link of `one_way` each direction.
pub async fn measure(one_way: Duration) -> Result<Vec<Cost>> {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let link = SlowLink::start(&app.address, one_way).await?;
    let dirs = data_dirs(3)?;
    let open = |i: usize| Client::open(&link.address, dirs[i].path());
    let (facilitator, sam, kim) = (open(0).await?, open(1).await?, open(2).await?);
    let mut costs = Vec::new();

    cost(&app, &mut costs, "register", facilitator.register(None)).await?;
    sam.register(None).await?;
    kim.register(None).await?;
    let circle = cost(
        &app,
        &mut costs,
        "circle create",
        facilitator.create_circle(),
    )
    .await?;
    let link_text = cost(
        &app,
        &mut costs,
        "invite",
        facilitator.create_invite(&circle),
    )
    .await?;
    let request = cost(
        &app,
        &mut costs,
        "join (redeem the invite)",
        sam.redeem_invite(&link_text, "hello"),
    )
    .await?;
    cost(
        &app,
        &mut costs,
        "approve a join request",
        facilitator.approve(&circle, request),
    )
    .await?;
    let joined = cost(
        &app,
        &mut costs,
        "accept the Welcome",
        sam.accept_welcomes(),
    )
    .await?;
    ensure!(joined == vec![circle.clone()], "Sam joined");
    // Kim joins without being measured, to make a circle of three.
    let kim_link = facilitator.create_invite(&circle).await?;
    let kim_request = kim.redeem_invite(&kim_link, "hi").await?;
    facilitator.approve(&circle, kim_request).await?;
    kim.accept_welcomes().await?;
    for client in [&facilitator, &sam, &kim] {
        client.sync(&circle).await?;
    }

    cost(
        &app,
        &mut costs,
        "send (nothing new)",
        sam.send_text(&circle, "see you Thursday"),
    )
    .await?;
    facilitator.sync(&circle).await?;
    cost(
        &app,
        &mut costs,
        "read (nothing new)",
        facilitator.sync(&circle),
    )
    .await?;
    for n in 0..20 {
        sam.send_text(&circle, &format!("message {n}")).await?;
    }
    let read = cost(&app, &mut costs, "read (20 new)", facilitator.sync(&circle)).await?;
    ensure!(read.len() >= 20, "the facilitator read the 20");
    kim.sync(&circle).await?;
    cost(&app, &mut costs, "wake (nothing new)", kim.on_wake()).await?;
    sam.send_text(&circle, "one more").await?;
    cost(&app, &mut costs, "wake (1 new)", kim.on_wake()).await?;
    let series = biweekly_series();
    cost(
        &app,
        &mut costs,
        "schedule a series",
        facilitator.schedule_series(&circle, series),
    )
    .await?;
    for client in [&facilitator, &sam, &kim] {
        client.sync(&circle).await?;
    }

    // Live: once Kim's socket is ready, Sam sends; how long until Kim's app
    // has it.
    let sam_device = sam.device_id().await?.context("Sam is registered")?;
    let kim = Arc::new(kim);
    let mut events = kim.live();
    let patience = Duration::from_secs(10) + one_way * 20;
    loop {
        match tokio::time::timeout(patience, events.recv()).await {
            Ok(Some(Event::Connected)) => break,
            Ok(Some(_)) => {}
            _ => anyhow::bail!("Kim's socket never became ready"),
        }
    }
    let started = Instant::now();
    sam.send_text(&circle, "live").await?;
    loop {
        match tokio::time::timeout(patience, events.recv()).await {
            Ok(Some(Event::Message { message, .. })) if message.sender == sam_device => {
                costs.push(Cost {
                    action: "send → another member's live socket",
                    requests: f64::NAN,
                    ms: started.elapsed().as_secs_f64() * 1e3,
                });
                break;
            }
            Ok(Some(_)) => {}
            _ => anyhow::bail!("Kim's socket never showed Sam's message"),
        }
    }
    app.stop().await?;
    Ok(costs)
}
