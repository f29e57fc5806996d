//! The calendar as a facilitator and members type it, mistakes included:
//! every series id, date, device and prompt a command names must exist, or
//! the command fails with a code and says where to look; a member in
//! another time zone names a session by the date they see; attendance takes
//! names; who missed a session counts only those who were in the circle,
//! and a late joiner counts alike; the rest of a series is cancelled in one
//! command.

use super::{circle_with, command, join_circle, one};
use anyhow::{Context as _, Result, ensure};
use hearth_tests::{TestApp, on_both_databases};
use serde_json::Value;
use std::path::Path;

on_both_databases!(calendar_mistakes_are_refused_and_everyone_counts_the_same_sessions);

/// Runs `hearth --json ...` as `profile` (in time zone `tz`), expecting a
/// failure: the one JSON object it printed.
async fn refused(
    app: &TestApp,
    home: &Path,
    profile: &str,
    tz: &str,
    args: &[&str],
) -> Result<Value> {
    let output = command(app, home, profile, true, args)
        .env("TZ", tz)
        .output()
        .await?;
    let err = String::from_utf8(output.stderr)?;
    ensure!(!output.status.success(), "hearth {args:?} succeeded");
    ensure!(err.trim_end().lines().count() == 1, "one line: {err}");
    let value: Value = serde_json::from_str(&err)?;
    ensure!(
        value["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{value}"
    );
    Ok(value)
}

/// Text output of a command that succeeds.
async fn text(app: &TestApp, home: &Path, profile: &str, args: &[&str]) -> Result<String> {
    let output = command(app, home, profile, false, args).output().await?;
    ensure!(
        output.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

async fn calendar_mistakes_are_refused_and_everyone_counts_the_same_sessions(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let circle = circle_with(&app, home, "alice", "Thursdays", &["sam", "kim"]).await?;
    // Four Thursdays, 18:00 in Berlin.
    let scheduled = one(
        &app,
        home,
        "alice",
        &[
            "schedule",
            &circle,
            "--first",
            "2027-03-18T18:00",
            "--tz",
            "Europe/Berlin",
            "--count",
            "4",
            "--minutes",
            "90",
        ],
    )
    .await?;
    let series = scheduled["series_id"]
        .as_str()
        .context("a series")?
        .to_owned();
    let nowhere = uuid::Uuid::new_v4().to_string();
    let berlin = "Europe/Berlin";

    // Mistakes: each one fails with its code, and nothing is sent.
    for (who, args, code) in [
        (
            "alice",
            vec![
                "move",
                &circle,
                &nowhere,
                "2027-03-18",
                "--to",
                "2027-03-19T18:00",
            ],
            "no_such_session",
        ),
        (
            "alice",
            vec![
                "move",
                &circle,
                &series,
                "2027-03-20",
                "--to",
                "2027-03-21T18:00",
            ],
            "no_such_session",
        ),
        (
            "alice",
            vec![
                "move",
                &circle,
                &series,
                "2027-03-18",
                "--to",
                "2027-03-19T18:00",
                "--minutes",
                "0",
            ],
            "invalid_schedule",
        ),
        (
            "alice",
            vec![
                "move",
                &circle,
                &series,
                "2027-03-18",
                "--to",
                "2027-03-19T18:00",
                "--minutes",
                "1000",
            ],
            "invalid_schedule",
        ),
        (
            "alice",
            vec!["cancel", &circle, &series, "2027-03-20"],
            "no_such_session",
        ),
        (
            "alice",
            vec!["cancel", &circle, &nowhere],
            "no_such_session",
        ),
        (
            "sam",
            vec!["rsvp", &circle, &nowhere, "2027-03-18", "yes"],
            "no_such_session",
        ),
        (
            "alice",
            vec!["attendance", &circle, &series, "2027-04-18", "sam"],
            "no_such_session",
        ),
        (
            "alice",
            vec!["attendance", &circle, &series, "2027-03-18", &nowhere],
            "not_a_member",
        ),
        (
            "sam",
            vec!["check-in", "reply", &circle, &nowhere, "3"],
            "no_such_check_in",
        ),
        // Lines that do not parse answer in JSON too, on one line.
        (
            "alice",
            vec!["schedule", &circle, "--first", "2027-03-18", "--tz", berlin],
            "invalid_input",
        ),
        (
            "alice",
            vec![
                "schedule",
                &circle,
                "--first",
                "2027-02-30T18:00",
                "--tz",
                berlin,
            ],
            "invalid_input",
        ),
        (
            "alice",
            vec![
                "schedule",
                &circle,
                "--first",
                "2027-03-18T18:00",
                "--count",
                "2",
                "--until",
                "2027-04-01",
            ],
            "invalid_input",
        ),
    ] {
        let value = refused(&app, home, who, berlin, &args).await?;
        assert_eq!(value["code"], code, "{args:?}: {value}");
    }
    let prompt = one(
        &app,
        home,
        "alice",
        &["check-in", "prompt", &circle, "how", "was", "your", "week?"],
    )
    .await?;
    let prompt = prompt["prompt_id"].as_str().context("a prompt")?.to_owned();
    let value = refused(
        &app,
        home,
        "sam",
        berlin,
        &["check-in", "reply", &circle, &prompt, "9"],
    )
    .await?;
    assert_eq!(value["code"], "invalid_check_in");
    let sessions = one(&app, home, "sam", &["sessions", &circle, "--tz", berlin]).await?;
    let sessions = sessions["sessions"].as_array().context("sessions")?;
    assert!(
        sessions
            .iter()
            .all(|s| s["moved"] == false && s["cancelled"] == false && s["minutes"] == 90),
        "no mistake changed anything: {sessions:?}"
    );

    // Sam is in Sydney: Thursday 18:00 in Berlin is Friday 04:00 there. He
    // passes on "Friday the 19th", the date he sees.
    let answered = command(
        &app,
        home,
        "sam",
        true,
        &[
            "rsvp",
            &circle,
            &series,
            "2027-03-19",
            "pass",
            "--note",
            "away",
        ],
    )
    .env("TZ", "Australia/Sydney")
    .output()
    .await?;
    ensure!(
        answered.status.success(),
        "{}",
        String::from_utf8_lossy(&answered.stderr)
    );
    let answered: Value = serde_json::from_slice(&answered.stdout)?;
    assert_eq!(answered["occurrence"], "2027-03-18", "the session he meant");
    one(
        &app,
        home,
        "kim",
        &["rsvp", &circle, &series, "2027-03-18", "yes"],
    )
    .await?;
    let listed = text(&app, home, "alice", &["sessions", &circle, "--tz", berlin]).await?;
    let first = listed.lines().next().context("a line")?;
    assert!(
        first.contains("coming: kim") && first.contains("passing: sam (away)"),
        "{first}"
    );

    // Attendance by name; Kim was not there, Sam had passed.
    one(
        &app,
        home,
        "alice",
        &["attendance", &circle, &series, "2027-03-18", "alice"],
    )
    .await?;
    let missed = one(&app, home, "alice", &["missed", &circle]).await?;
    let entry = &missed["missed"][0];
    assert_eq!(entry["series_id"], series.as_str());
    assert_eq!(entry["occurrence"], "2027-03-18");
    assert_eq!(
        entry["missed"].as_array().map(Vec::len),
        Some(1),
        "{missed}"
    );

    // Lee joins after that session: he missed nothing before he came, and
    // counts it as Alice does (Sam's pass reached him in the snapshot).
    join_circle(&app, home, "alice", &circle, "lee").await?;
    let alices = one(&app, home, "alice", &["missed", &circle]).await?;
    let lees = one(&app, home, "lee", &["missed", &circle]).await?;
    assert_eq!(alices, lees, "one count for everyone");
    assert_eq!(
        alices["missed"][0]["missed"].as_array().map(Vec::len),
        Some(1)
    );

    // Replies show, with who wrote them.
    one(
        &app,
        home,
        "sam",
        &[
            "check-in",
            "reply",
            &circle,
            &prompt,
            "3",
            "--line",
            "a hard week",
        ],
    )
    .await?;
    let shown = text(&app, home, "alice", &["check-in", "show", &circle]).await?;
    assert!(shown.contains("sam 3/5: a hard week"), "{shown}");

    // The circle stops after two sessions: one command cancels the rest.
    let value = refused(
        &app,
        home,
        "alice",
        berlin,
        &["cancel", &circle, &series, "--onward"],
    )
    .await?;
    assert_eq!(value["code"], "invalid_input", "--onward needs a date");
    let cancelled = one(
        &app,
        home,
        "alice",
        &["cancel", &circle, &series, "2027-04-01", "--onward"],
    )
    .await?;
    assert_eq!(cancelled["cancelled"]["from"], "2027-04-01");
    let sessions = one(&app, home, "lee", &["sessions", &circle]).await?;
    let cancelled: Vec<bool> = sessions["sessions"]
        .as_array()
        .context("sessions")?
        .iter()
        .map(|s| s["cancelled"] == true)
        .collect();
    assert_eq!(cancelled, [false, false, true, true]);
    Ok(())
}
