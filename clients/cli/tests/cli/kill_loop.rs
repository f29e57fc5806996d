//! A phone kills apps without warning. Round after round, each process here
//! is killed with SIGKILL at a random moment — somewhere in starting, opening
//! its files, encrypting, sending, waiting for the answer, merging, storing:
//! Sam sending, Anna committing (removing a guest, or approving one), Sam
//! catching up with it, Anna sending. Whatever was cut short, nothing is decrypted twice or sent under
//! a used key (a reused nonce would reach the other side as a message that
//! cannot be decrypted, which the SDK reports), no message is lost or
//! repeated in either history, and both stay in step with the circle — or
//! say that they rejoined.

use super::{circle_with, command, hearth, join_circle, kill_schedule};
use anyhow::{Context as _, Result, ensure};
use hearth_tests::{TestApp, on_both_databases};
use serde_json::Value;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

on_both_databases!(
    sending_committing_and_catching_up_killed_at_random_moments_lose_and_repeat_nothing
);

/// Rounds of the loop (four killed commands each).
const ROUNDS: usize = 24;

/// What one command, killed or not, left behind.
struct Outcome {
    /// Killed before it finished.
    killed: bool,
    /// Finished, and succeeded.
    succeeded: bool,
    stderr: String,
}

/// Runs `hearth --json args` as `profile`, killed with SIGKILL after
/// `after` if it has not finished by then.
async fn killed_after(
    app: &TestApp,
    home: &Path,
    profile: &str,
    args: &[&str],
    after: Duration,
) -> Result<Outcome> {
    let mut child = command(app, home, profile, true, args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let read = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let (killed, status) = tokio::select! {
        status = child.wait() => (false, status?),
        () = tokio::time::sleep(after) => {
            child.start_kill()?;
            (true, child.wait().await?)
        }
    };
    Ok(Outcome {
        // One that finished just as the kill came counts as finished.
        killed: killed && !status.success(),
        succeeded: status.success(),
        stderr: read.await?,
    })
}

fn bodies(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["body"].as_str().map(str::to_owned))
        .collect()
}

async fn sending_committing_and_catching_up_killed_at_random_moments_lose_and_repeat_nothing(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    // Anna's circle: Sam, and guests for Anna's commits to remove and add.
    let circle = circle_with(&app, home, "Anna", "Thursday circle", &["Sam"]).await?;
    for guest in ["Guest0a", "Guest0b", "Guest0c"] {
        join_circle(&app, home, "Anna", &circle, guest).await?;
    }
    hearth(&app, home, "Sam", &["read", &circle]).await?;

    let mut next = kill_schedule()?;
    let mut moment = move || {
        // From before the process is up to after most commands are done.
        Duration::from_millis(next() % 120)
    };

    let mut finished_sends = Vec::new();
    let mut complaints = Vec::new();
    let (mut killed, mut rejoins, mut commands) = (0, 0, 0);
    for round in 1..=ROUNDS {
        let sam_says = format!("sam {round}");
        let anna_says = format!("anna {round}");
        // Anna's commit: every other round she removes a guest (when one is
        // left), in the others she approves a new one (who asked to join
        // just before).
        let roster = hearth(&app, home, "Anna", &["members", &circle]).await?;
        let guest = roster[0]["members"]
            .as_array()
            .into_iter()
            .flatten()
            // Anna and Sam stay; a guest may have no name for Anna yet.
            .find(|m| m["role"] == "member" && m["name"] != "Sam")
            .and_then(|m| m["device_id"].as_str())
            .map(str::to_owned);
        let commit: Vec<String> = match guest {
            Some(guest) if round % 2 == 1 => vec!["remove".into(), circle.clone(), guest],
            _ => {
                let guest = format!("Guest{round}");
                hearth(&app, home, &guest, &["register", "--name", &guest]).await?;
                let invite = hearth(&app, home, "Anna", &["invite", &circle]).await?;
                let link = invite[0]["link"].as_str().context("a link")?.to_owned();
                let asked = hearth(&app, home, &guest, &["join", &link, "--note", "hello"]).await?;
                let request = asked[0]["join_request_id"]
                    .as_str()
                    .context("a join request")?
                    .to_owned();
                vec!["approve".into(), circle.clone(), request]
            }
        };
        let commit: Vec<&str> = commit.iter().map(String::as_str).collect();
        let steps: [(&str, Vec<&str>); 4] = [
            ("Sam", vec!["send", &circle, &sam_says]),
            ("Anna", commit),
            ("Sam", vec!["read", &circle]),
            ("Anna", vec!["send", &circle, &anna_says]),
        ];
        for (profile, args) in steps {
            commands += 1;
            let outcome = killed_after(&app, home, profile, &args, moment()).await?;
            if outcome.succeeded && args[0] == "send" {
                finished_sends.push(args[2].to_owned());
            }
            if outcome.killed {
                killed += 1;
            } else if !outcome.succeeded {
                complaints.push(format!("{profile} {args:?} failed: {}", outcome.stderr));
            }
            for line in outcome.stderr.lines() {
                if line.contains("\"notice\":\"rejoined\"") {
                    rejoins += 1;
                } else if line.contains("\"notice\"") {
                    complaints.push(format!("{profile} {args:?}: {line}"));
                }
            }
        }
    }
    ensure!(complaints.is_empty(), "{complaints:#?}");

    // Back to normal: each sends what its outbox still holds, and reads.
    for profile in ["Sam", "Anna", "Sam"] {
        let outcome =
            killed_after(&app, home, profile, &["outbox"], Duration::from_secs(60)).await?;
        ensure!(outcome.succeeded, "{profile}'s outbox: {}", outcome.stderr);
        ensure!(
            !outcome.stderr.contains("undecryptable"),
            "{}",
            outcome.stderr
        );
    }
    let sam = bodies(&hearth(&app, home, "Sam", &["read", &circle]).await?);
    let anna = bodies(&hearth(&app, home, "Anna", &["read", &circle]).await?);
    assert_eq!(sam, anna, "one history, the same on both sides");
    let mut seen = HashSet::new();
    for body in &sam {
        ensure!(seen.insert(body), "{body:?} twice in the history");
    }
    for sent in &finished_sends {
        ensure!(seen.contains(sent), "{sent:?} was sent and is missing");
    }
    for who in ["sam", "anna"] {
        let rounds: Vec<usize> = sam
            .iter()
            .filter_map(|b| b.strip_prefix(&format!("{who} ")))
            .filter_map(|n| n.parse().ok())
            .collect();
        ensure!(
            rounds.windows(2).all(|w| w[0] < w[1]),
            "{who}'s messages out of order: {rounds:?}"
        );
    }
    // Still in step: each reads what the other says now.
    hearth(&app, home, "Sam", &["send", &circle, "still here"]).await?;
    let anna = bodies(&hearth(&app, home, "Anna", &["read", &circle]).await?);
    assert_eq!(anna.last().map(String::as_str), Some("still here"));
    hearth(&app, home, "Anna", &["send", &circle, "see you Thursday"]).await?;
    let sam = bodies(&hearth(&app, home, "Sam", &["read", &circle]).await?);
    assert_eq!(sam.last().map(String::as_str), Some("see you Thursday"));
    let members = hearth(&app, home, "Anna", &["members", &circle]).await?;
    eprintln!(
        "{ROUNDS} rounds, {killed} of {commands} commands killed, {} messages in both histories ({} sends finished), {rejoins} rejoins said; {} devices in the circle at the end",
        sam.len(),
        finished_sends.len(),
        members[0]["members"].as_array().map_or(0, Vec::len)
    );
    Ok(())
}
