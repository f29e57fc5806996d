//! A phone runs the same client twice: the app, and the notification
//! extension a push wakes. Here Sam's profile runs `hearth read --follow`
//! (the app, on the live socket) and `hearth notifications --every-ms`
//! (the extension, on wakes) at once while Anna sends 500 messages: the
//! app shows every message exactly once and in order, whichever process
//! decrypted it; the extension shows each at most once; nothing is left
//! undecryptable and nobody falls out of step. Then the same with either
//! process killed by SIGKILL at random points and started again.

use super::{circle_with, command, hearth, kill_schedule};
use anyhow::{Context as _, Result, bail, ensure};
use hearth_client::Client;
use hearth_protocol::CircleId;
use hearth_tests::{TestApp, on_both_databases};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Child;

on_both_databases!(
    the_app_and_its_extension_share_sams_profile_while_anna_sends_500_messages,
    killing_either_process_at_random_points_loses_and_repeats_nothing
);

/// How many messages Anna sends.
const MESSAGES: usize = 500;

/// One of Sam's processes, with every line it printed so far.
struct Running {
    child: Child,
    out: Arc<Mutex<Vec<Value>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Starts `hearth --json args` on Sam's profile, collecting its output.
    fn start(app: &TestApp, home: &Path, args: &[&str]) -> Result<Self> {
        let mut child = command(app, home, "Sam", true, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let lines = out.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let (Ok(value), Ok(mut lines)) =
                    (serde_json::from_str::<Value>(&line), lines.lock())
                {
                    lines.push(value);
                }
            }
        });
        let lines = err.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
        });
        Ok(Self { child, out, err })
    }

    /// The bodies of the messages it printed (the app's lines, or the
    /// extension's previews), in order.
    fn texts(&self, field: &str) -> Vec<String> {
        self.out
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| l[field].as_str().map(str::to_owned))
                    .filter(|t| t.starts_with("message "))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whatever it said on stderr that is not a retry: a notice (a rejoin,
    /// a removal) or an error.
    fn complaints(&self) -> Vec<String> {
        self.err
            .lock()
            .map(|lines| {
                lines
                    .iter()
                    .filter(|l| !l.contains("nothing shown this time"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn kill(&mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        // What the pipes still held.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(())
    }
}

/// Anna's circle with Sam in it, and Anna's own client (the CLI's profile
/// directory, opened with the SDK so 500 sends take seconds, not minutes).
async fn anna_and_sam(app: &TestApp, home: &Path) -> Result<(Arc<Client>, CircleId)> {
    let circle = circle_with(app, home, "Anna", "Thursday circle", &["Sam"]).await?;
    hearth(app, home, "Sam", &["read", &circle]).await?;
    let anna = Client::open(&app.address, home.join("Anna")).await?;
    Ok((Arc::new(anna), circle.parse()?))
}

fn expected() -> Vec<String> {
    (1..=MESSAGES).map(|i| format!("message {i}")).collect()
}

/// Waits until `done` holds, checking every 50 ms, for at most `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let give_up = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() > give_up {
            bail!("gave up waiting");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Each text at most once.
fn at_most_once(texts: &[String]) -> Result<()> {
    let mut seen = HashSet::new();
    for text in texts {
        ensure!(seen.insert(text), "{text:?} shown twice");
    }
    Ok(())
}

/// After the storm: Sam's history holds every message once, in order, and
/// both of them are still in step with the circle (Sam answers, Anna reads
/// it; Anna answers, Sam reads it).
async fn still_in_step(app: &TestApp, home: &Path, anna: &Client, circle: &CircleId) -> Result<()> {
    let id = circle.to_string();
    let history = hearth(app, home, "Sam", &["read", &id]).await?;
    let bodies: Vec<String> = history
        .iter()
        .filter_map(|l| l["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(bodies, expected(), "Sam's history: each once, in order");
    hearth(app, home, "Sam", &["send", &id, "thank you all"]).await?;
    anna.sync_all().await?;
    let said: Vec<String> = anna
        .history(circle)
        .await?
        .into_iter()
        .filter_map(|m| match m.envelope.content {
            hearth_protocol::content::Content::Text { body, .. } => Some(body),
            _ => None,
        })
        .collect();
    assert_eq!(said.last().map(String::as_str), Some("thank you all"));
    anna.send_text(circle, "see you Thursday").await?;
    let history = hearth(app, home, "Sam", &["read", &id]).await?;
    assert_eq!(
        history.last().and_then(|l| l["body"].as_str()),
        Some("see you Thursday")
    );
    assert!(
        anna.take_notices().is_empty(),
        "Anna never had to rejoin or repair"
    );
    Ok(())
}

async fn the_app_and_its_extension_share_sams_profile_while_anna_sends_500_messages(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let (anna, circle) = anna_and_sam(&app, home).await?;
    let id = circle.to_string();
    let app_process = Running::start(&app, home, &["read", &id, "--follow"])?;
    let extension = Running::start(&app, home, &["notifications", "--every-ms", "20"])?;
    // Both are up before the first message.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for i in 1..=MESSAGES {
        anna.send_text(&circle, &format!("message {i}")).await?;
    }
    until(Duration::from_secs(120), || {
        app_process.texts("body").len() >= MESSAGES
    })
    .await?;
    // The extension's last look.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(
        app_process.texts("body"),
        expected(),
        "the app shows every message exactly once, in order"
    );
    let notified = extension.texts("preview");
    at_most_once(&notified)?;
    assert!(
        notified.iter().all(|t| expected().contains(t)),
        "the extension shows only what Anna sent"
    );
    assert!(
        app_process.complaints().is_empty(),
        "the app: {:?}",
        app_process.complaints()
    );
    assert!(
        extension.complaints().is_empty(),
        "the extension: {:?}",
        extension.complaints()
    );
    eprintln!(
        "500 messages: the app showed {}, the extension notified {} (the rest had reached the app first)",
        app_process.texts("body").len(),
        notified.len()
    );
    drop(app_process);
    drop(extension);
    still_in_step(&app, home, &anna, &circle).await
}

async fn killing_either_process_at_random_points_loses_and_repeats_nothing(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let (anna, circle) = anna_and_sam(&app, home).await?;
    let id = circle.to_string();
    let follow = ["read", id.as_str(), "--follow"];
    let look = ["notifications", "--every-ms", "10"];
    let mut app_process = Running::start(&app, home, &follow)?;
    let mut extension = Running::start(&app, home, &look)?;
    let mut notified: Vec<String> = Vec::new();

    let sender = {
        let anna = anna.clone();
        let circle = circle.clone();
        tokio::spawn(async move {
            for i in 1..=MESSAGES {
                anna.send_text(&circle, &format!("message {i}")).await?;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok(())
        })
    };
    // Kill one of them every 100-400 ms (which one, and when, from a seed
    // printed for a rerun), and start it again.
    let mut next = kill_schedule()?;
    let mut kills = 0;
    while !sender.is_finished() {
        tokio::time::sleep(Duration::from_millis(100 + next() % 300)).await;
        kills += 1;
        if next() % 2 == 0 {
            app_process.kill().await?;
            ensure!(
                app_process.complaints().is_empty(),
                "the app before it was killed: {:?}",
                app_process.complaints()
            );
            app_process = Running::start(&app, home, &follow)?;
        } else {
            extension.kill().await?;
            ensure!(
                extension.complaints().is_empty(),
                "the extension before it was killed: {:?}",
                extension.complaints()
            );
            notified.extend(extension.texts("preview"));
            extension = Running::start(&app, home, &look)?;
        }
    }
    sender.await??;
    // The last app process reads the history and follows: it ends up with
    // everything.
    until(Duration::from_secs(120), || {
        app_process.texts("body").len() >= MESSAGES
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    extension.kill().await?;
    notified.extend(extension.texts("preview"));
    assert_eq!(
        app_process.texts("body"),
        expected(),
        "the last app process shows every message once, in order"
    );
    at_most_once(&notified)?;
    for running in [&app_process, &extension] {
        assert!(
            running.complaints().is_empty(),
            "{:?}",
            running.complaints()
        );
    }
    eprintln!(
        "{kills} kills; the extensions notified {} of {MESSAGES}",
        notified.len()
    );
    drop(app_process);
    still_in_step(&app, home, &anna, &circle).await
}
