//! Anything a member typed survives the app being killed mid-send: `hearth
//! send` is killed with SIGKILL while its request hangs on a dead network,
//! and again after the server took the message but before its answer came
//! back. Each message reaches the circle exactly once, in order, and the
//! sender's own history shows each once.

use super::{circle_with, command_at, hearth, one};
use anyhow::{Result, bail};
use hearth_tests::slow_link::{SlowLink, Trouble};
use hearth_tests::{TestApp, on_both_databases};
use std::path::Path;
use std::time::Duration;

on_both_databases!(a_send_killed_before_and_after_the_server_took_it_arrives_once);

/// Runs `hearth send` through the link and kills it with SIGKILL once the
/// link has dropped something (the request, or the server's answer).
async fn send_and_kill(link: &SlowLink, home: &Path, circle: &str, text: &str) -> Result<()> {
    let dropped = link.dropped();
    let mut child = command_at(&link.address, home, "Sam", true, &["send", circle, text])
        .kill_on_drop(true)
        .spawn()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while link.dropped() == dropped {
        if tokio::time::Instant::now() > deadline {
            bail!("hearth send never reached the link");
        }
        if let Some(status) = child.try_wait()? {
            bail!("hearth send ended by itself ({status})");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill()?;
    let status = child.wait().await?;
    anyhow::ensure!(!status.success(), "killed, not finished");
    Ok(())
}

async fn a_send_killed_before_and_after_the_server_took_it_arrives_once(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let circle = circle_with(&app, home, "Anna", "Thursday circle", &["Sam"]).await?;
    let link = SlowLink::start(&app.address, Duration::ZERO).await?;
    one(&app, home, "Sam", &["send", &circle, "before the tunnel"]).await?;

    // The train enters a tunnel: Sam's request never reaches the server,
    // and the app is killed while it waits.
    link.trouble(Trouble::Stalled);
    send_and_kill(&link, home, &circle, "see you Thursday").await?;
    // Out of the tunnel, but the answer to the next send is lost: the
    // server has the message, the app is killed before it hears so.
    link.trouble(Trouble::Deaf);
    send_and_kill(&link, home, &circle, "I'll bring the tea").await?;
    link.trouble(Trouble::None);

    // Both wait in Sam's outbox; the next command sends them, in order.
    let waiting = hearth(&app, home, "Sam", &["outbox"]).await?;
    assert!(waiting.is_empty(), "everything went out: {waiting:?}");
    let texts = |lines: &[serde_json::Value]| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l["body"].as_str().map(str::to_owned))
            .collect()
    };
    let expected = [
        "before the tunnel",
        "see you Thursday",
        "I'll bring the tea",
    ];
    let anna = hearth(&app, home, "Anna", &["read", &circle]).await?;
    assert_eq!(texts(&anna), expected, "each once, in order, for Anna");
    let sam = hearth(&app, home, "Sam", &["read", &circle]).await?;
    assert_eq!(texts(&sam), expected, "and in Sam's own history");
    Ok(())
}
