//! The `hearth` binary against the real server: the README's two-terminal
//! walkthrough, as a script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod calendar;
mod kill_loop;
mod outbox;
mod rough_edges;
mod two_processes;

use anyhow::{Context as _, Result, bail};
use hearth_tests::{TestApp, on_both_databases};
use serde_json::Value;
use std::path::Path;

on_both_databases!(a_facilitator_and_sam_walk_through_the_readme);

/// `hearth --server <app> --home <home> --profile <profile> [--json] args`.
fn command(
    app: &TestApp,
    home: &Path,
    profile: &str,
    json: bool,
    args: &[&str],
) -> tokio::process::Command {
    command_at(&app.address, home, profile, json, args)
}

/// [`command`] against a server at `server` (a proxy in front of it, say).
fn command_at(
    server: &str,
    home: &Path,
    profile: &str,
    json: bool,
    args: &[&str],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth"));
    command
        .args(["--server", server, "--home"])
        .arg(home)
        .args(["--profile", profile])
        .args(json.then_some("--json"))
        .args(args);
    command
}

/// Runs `hearth --json ...` as `profile`; the parsed JSON of each output line.
async fn hearth(app: &TestApp, home: &Path, profile: &str, args: &[&str]) -> Result<Vec<Value>> {
    let output = command(app, home, profile, true, args).output().await?;
    if !output.status.success() {
        bail!(
            "hearth {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout)?
        .lines()
        .map(|line| Ok(serde_json::from_str(line)?))
        .collect()
}

/// `person` registers under their profile's name and joins `facilitator`'s
/// circle by invite and approval.
async fn join_circle(
    app: &TestApp,
    home: &Path,
    facilitator: &str,
    circle: &str,
    person: &str,
) -> Result<()> {
    one(app, home, person, &["register", "--name", person]).await?;
    let invite = one(app, home, facilitator, &["invite", circle]).await?;
    let link = invite["link"].as_str().unwrap_or_default().to_owned();
    let asked = one(app, home, person, &["join", &link]).await?;
    let request = asked["join_request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    one(app, home, facilitator, &["approve", circle, &request]).await?;
    one(app, home, person, &["status"]).await?;
    Ok(())
}

/// A circle titled `title` facilitated by `facilitator`, and `people` in it
/// (each registered with their profile's name, in by invite and approval).
async fn circle_with(
    app: &TestApp,
    home: &Path,
    facilitator: &str,
    title: &str,
    people: &[&str],
) -> Result<String> {
    one(app, home, facilitator, &["register", "--name", facilitator]).await?;
    let created = one(
        app,
        home,
        facilitator,
        &["circle", "create", "--title", title],
    )
    .await?;
    let circle = created["circle_id"]
        .as_str()
        .context("a circle id")?
        .to_owned();
    for person in people {
        join_circle(app, home, facilitator, &circle, person).await?;
    }
    Ok(circle)
}

/// Random numbers for a story that kills processes at random moments, from
/// a seed it prints (to run the same schedule again).
fn kill_schedule() -> Result<impl FnMut() -> u64> {
    let seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos()
        .try_into()
        .unwrap_or(1);
    eprintln!("kill schedule seed {seed}");
    let mut state = seed | 1;
    Ok(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    })
}

async fn one(app: &TestApp, home: &Path, profile: &str, args: &[&str]) -> Result<Value> {
    let mut values = hearth(app, home, profile, args).await?;
    match values.len() {
        1 => Ok(values.remove(0)),
        n => bail!("expected one line of output, got {n}"),
    }
}

async fn a_facilitator_and_sam_walk_through_the_readme(app: TestApp) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();

    // Terminal one: the facilitator.
    one(&app, home, "alice", &["register", "--name", "Alice"]).await?;
    let circle = one(
        &app,
        home,
        "alice",
        &["circle", "create", "--title", "Tuesday grief circle"],
    )
    .await?["circle_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let link = one(&app, home, "alice", &["invite", &circle]).await?["link"]
        .as_str()
        .unwrap()
        .to_owned();

    // Terminal two: Sam joins with the link.
    one(&app, home, "sam", &["register", "--name", "Sam"]).await?;
    let asked = one(
        &app,
        home,
        "sam",
        &[
            "join",
            &link,
            "--note",
            "hi, it's Sam from the Tuesday group",
        ],
    )
    .await?;
    let request = asked["join_request_id"].as_str().unwrap().to_owned();

    let requests = one(&app, home, "alice", &["requests", &circle]).await?;
    assert_eq!(
        requests["join_requests"][0]["note"],
        "hi, it's Sam from the Tuesday group"
    );
    one(&app, home, "alice", &["approve", &circle, &request]).await?;
    let status = one(&app, home, "sam", &["status"]).await?;
    assert_eq!(status["joined"][0], circle.as_str());

    one(
        &app,
        home,
        "alice",
        &["send", &circle, "see", "you", "thursday"],
    )
    .await?;
    one(&app, home, "sam", &["send", &circle, "I'll be there"]).await?;
    let read = hearth(&app, home, "sam", &["read", &circle]).await?;
    let bodies: Vec<&str> = read.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["see you thursday", "I'll be there"]);
    // Names and the title come from encrypted content, never from the server.
    let senders: Vec<&str> = read
        .iter()
        .filter_map(|m| m["sender_name"].as_str())
        .collect();
    assert_eq!(senders, ["Alice", "Sam"], "{read:?}");
    let listed = one(&app, home, "sam", &["circle", "list"]).await?;
    assert_eq!(listed["circles"][0]["title"], "Tuesday grief circle");
    let read = hearth(&app, home, "alice", &["read", &circle]).await?;
    assert_eq!(read.len(), 2);

    let alice = one(&app, home, "alice", &["circle", "show", &circle]).await?;
    let sam = one(&app, home, "sam", &["circle", "show", &circle]).await?;
    assert_eq!(
        alice["epoch_authenticator"], sam["epoch_authenticator"],
        "one view of the circle"
    );

    // The facilitator schedules six sessions every two weeks; Sam passes on
    // the first, sees the others, and accepts the agreement.
    let scheduled = one(
        &app,
        home,
        "alice",
        &[
            "schedule",
            &circle,
            "--first",
            "2027-01-05T18:00",
            "--tz",
            "Europe/Berlin",
            "--every",
            "2",
            "--count",
            "6",
            "--minutes",
            "90",
            "--title",
            "Grief circle",
            "--video",
        ],
    )
    .await?;
    let series = scheduled["series_id"].as_str().unwrap().to_owned();
    one(
        &app,
        home,
        "sam",
        &["rsvp", &circle, &series, "2027-01-05", "pass"],
    )
    .await?;
    one(
        &app,
        home,
        "alice",
        &["cancel", &circle, &series, "2027-01-19"],
    )
    .await?;
    one(
        &app,
        home,
        "alice",
        &[
            "agreement",
            "set",
            &circle,
            "What",
            "is",
            "said",
            "here",
            "stays",
            "here.",
        ],
    )
    .await?;
    let sessions = one(
        &app,
        home,
        "sam",
        &["sessions", &circle, "--tz", "America/New_York"],
    )
    .await?;
    let sessions = sessions["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 6);
    assert_eq!(
        sessions[0]["start"],
        "2027-01-05T12:00:00-05:00[America/New_York]"
    );
    assert_eq!(sessions[0]["rsvps"][0]["answer"], "passing");
    assert_eq!(sessions[1]["cancelled"], true);
    one(&app, home, "sam", &["agreement", "accept", &circle]).await?;
    let agreement = one(&app, home, "alice", &["agreement", "show", &circle]).await?;
    assert_eq!(agreement["text"], "What is said here stays here.");
    assert_eq!(agreement["pending"].as_array().map(Vec::len), Some(0));

    let devices = one(&app, home, "sam", &["devices"]).await?;
    assert_eq!(devices["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(devices["devices"][0]["current"], true);

    // This server has no video server: the CLI says what to configure.
    let call = hearth(&app, home, "alice", &["call", &circle]).await;
    let message = call.expect_err("no video server").to_string();
    assert!(message.contains("video_unconfigured"), "{message}");

    // A profile with no device says what to do.
    let unregistered = hearth(&app, home, "nobody", &["status"]).await;
    let message = unregistered.expect_err("no device").to_string();
    assert!(message.contains("register"), "{message}");
    Ok(())
}
