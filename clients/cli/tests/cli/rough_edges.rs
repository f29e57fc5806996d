//! What people do that the walkthrough does not: removing someone by name,
//! leaving and coming back, a second device, an invitation a device cannot
//! open, a server that is down — through the `hearth` binary, as text and as
//! JSON.

use super::{circle_with, command, hearth, one};
use anyhow::{Context as _, Result, ensure};
use hearth_tests::clients::lose_mls_state;
use hearth_tests::{TestApp, on_both_databases};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};

on_both_databases!(
    a_facilitator_removes_alex_by_name_and_sam_leaves_and_comes_back,
    sams_laptop_joins_by_itself_and_a_lost_invitation_is_repaired,
    errors_are_one_line_or_one_json_object_and_say_what_to_do,
    reading_along_shows_your_own_messages_sent_from_another_terminal,
);

/// Runs `hearth` (text output) as `profile`: (success, stdout, stderr).
async fn text(
    app: &TestApp,
    home: &Path,
    profile: &str,
    args: &[&str],
) -> Result<(bool, String, String)> {
    let output = command(app, home, profile, false, args).output().await?;
    Ok((
        output.status.success(),
        String::from_utf8(output.stdout)?,
        String::from_utf8(output.stderr)?,
    ))
}

/// The body of the last message `profile` reads in the circle.
async fn last_body(app: &TestApp, home: &Path, profile: &str, circle: &str) -> Result<String> {
    let read = hearth(app, home, profile, &["read", circle]).await?;
    string(read.last().context("no messages")?, "body")
}

fn string(value: &Value, key: &str) -> Result<String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {key} in {value}"))
}

async fn a_facilitator_removes_alex_by_name_and_sam_leaves_and_comes_back(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let circle = circle_with(&app, home, "Anna", "Thursday circle", &["Sam", "Alex"]).await?;
    one(&app, home, "Anna", &["send", &circle, "welcome, both"]).await?;
    hearth(&app, home, "Alex", &["read", &circle]).await?;

    // Anna sees who is there, by name, and removes Alex by name.
    let members = one(&app, home, "Anna", &["members", &circle]).await?;
    let rows = members["members"].as_array().context("members")?;
    let mut named: Vec<(String, String)> = rows
        .iter()
        .map(|r| Ok((string(r, "name")?, string(r, "role")?)))
        .collect::<Result<_>>()?;
    named.sort();
    assert_eq!(
        named,
        [
            ("Alex".to_owned(), "member".to_owned()),
            ("Anna".to_owned(), "facilitator".to_owned()),
            ("Sam".to_owned(), "member".to_owned())
        ]
    );
    let (ok, out, _) = text(&app, home, "Anna", &["members", &circle]).await?;
    assert!(
        ok && out.contains("Sam  member") && out.contains("(you)"),
        "{out}"
    );
    let (ok, _, err) = text(&app, home, "Anna", &["remove", &circle, "Nobody"]).await?;
    assert!(!ok && err.contains("hearth members"), "{err}");
    one(&app, home, "Anna", &["remove", &circle, "alex"]).await?;
    one(&app, home, "Anna", &["send", &circle, "Alex has gone"]).await?;

    // Alex is told, keeps what was said before, and lists the circle as
    // one she was removed from.
    let (ok, out, err) = text(&app, home, "Alex", &["read", &circle]).await?;
    assert!(ok, "{err}");
    assert!(
        out.contains("welcome, both") && !out.contains("Alex has gone"),
        "{out}"
    );
    assert!(
        err.contains("you were removed from \"Thursday circle\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "said once: {err}");
    let listed = one(&app, home, "Alex", &["circle", "list"]).await?;
    assert_eq!(listed["circles"].as_array().map(Vec::len), Some(0));
    assert_eq!(listed["past_circles"][0]["removed"], true);
    assert_eq!(listed["past_circles"][0]["title"], "Thursday circle");
    let (_, out, _) = text(&app, home, "Alex", &["circle", "list"]).await?;
    assert!(out.starts_with("you are in no circles now"), "{out}");
    assert!(
        out.contains("Thursday circle") && out.contains("(you were removed)"),
        "{out}"
    );
    let (ok, _, err) = text(&app, home, "Alex", &["send", &circle, "hello?"]).await?;
    assert!(!ok && err.starts_with("hearth: you were removed"), "{err}");

    // Sam leaves, is invited again, and is back.
    one(&app, home, "Sam", &["leave", &circle]).await?;
    let link = string(
        &one(&app, home, "Anna", &["invite", &circle]).await?,
        "link",
    )?;
    let request = string(
        &one(&app, home, "Sam", &["join", &link, "--note", "back again"]).await?,
        "join_request_id",
    )?;
    one(&app, home, "Anna", &["approve", &circle, &request]).await?;
    let status = one(&app, home, "Sam", &["status"]).await?;
    assert_eq!(status["joined"][0], circle.as_str());
    assert_eq!(status["circles"][0]["title"], "Thursday circle");
    one(&app, home, "Anna", &["send", &circle, "hello again, Sam"]).await?;
    let read = hearth(&app, home, "Sam", &["read", &circle]).await?;
    let bodies: Vec<&str> = read.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies.last(), Some(&"hello again, Sam"));
    one(&app, home, "Sam", &["send", &circle, "good to be back"]).await?;
    assert_eq!(
        last_body(&app, home, "Anna", &circle).await?,
        "good to be back"
    );
    Ok(())
}

async fn sams_laptop_joins_by_itself_and_a_lost_invitation_is_repaired(app: TestApp) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let circle = circle_with(&app, home, "Anna", "Monday circle", &["Sam"]).await?;

    // Sam links his laptop; his phone brings it in on its next sync.
    let token = string(&one(&app, home, "Sam", &["link"]).await?, "link_token")?;
    let (ok, out, _) = text(&app, home, "laptop", &["register", "--link", &token]).await?;
    assert!(ok && out.contains("your other device adds it"), "{out}");
    let (ok, _, err) = text(&app, home, "Sam", &["read", &circle]).await?;
    assert!(
        ok && err.contains("added your other device to \"Monday circle\""),
        "{err}"
    );
    // (The title reaches the laptop from the facilitator, whose client
    // re-announces it after every Add it sees.)
    hearth(&app, home, "Anna", &["read", &circle]).await?;
    let (ok, out, _) = text(&app, home, "laptop", &["status"]).await?;
    assert!(ok && out.contains("joined \"Monday circle\""), "{out}");
    one(&app, home, "Anna", &["send", &circle, "hello, laptop"]).await?;
    let read = hearth(&app, home, "laptop", &["read", &circle]).await?;
    assert_eq!(read[0]["body"], "hello, laptop");

    // Jo asks to join, then her device loses the keys of the KeyPackages it
    // published (a restore without them): the invitation cannot be opened,
    // so the CLI joins her directly and says so.
    one(&app, home, "Jo", &["register", "--name", "Jo"]).await?;
    let link = string(
        &one(&app, home, "Anna", &["invite", &circle]).await?,
        "link",
    )?;
    let request = string(
        &one(&app, home, "Jo", &["join", &link]).await?,
        "join_request_id",
    )?;
    lose_mls_state(&home.join("Jo"))?;
    one(&app, home, "Anna", &["approve", &circle, &request]).await?;
    let (ok, out, err) = text(&app, home, "Jo", &["status"]).await?;
    assert!(ok, "{err}");
    assert!(
        err.contains("could not be opened on this device, so it joined directly"),
        "{err}"
    );
    assert!(out.contains(&circle), "{out}");
    // Anna's client sees Jo join and tells her the title and names.
    one(&app, home, "Anna", &["send", &circle, "hi Jo"]).await?;
    let read = hearth(&app, home, "Jo", &["read", &circle]).await?;
    assert_eq!(read.last().map(|m| m["body"].clone()), Some("hi Jo".into()));
    assert_eq!(
        read.last().map(|m| m["sender_name"].clone()),
        Some("Anna".into())
    );
    let listed = one(&app, home, "Jo", &["circle", "list"]).await?;
    assert_eq!(listed["circles"][0]["title"], "Monday circle");

    // Sam's phone loses its encryption state: the next read rejoins, and
    // says that what was sent meanwhile is lost to this device.
    lose_mls_state(&home.join("Sam"))?;
    one(&app, home, "Anna", &["send", &circle, "while Sam was away"]).await?;
    let (ok, _, err) = text(&app, home, "Sam", &["read", &circle]).await?;
    assert!(ok, "{err}");
    assert!(
        err.contains("had fallen out of step with \"Monday circle\" and rejoined it"),
        "{err}"
    );
    one(&app, home, "Anna", &["send", &circle, "after Sam rejoined"]).await?;
    assert_eq!(
        last_body(&app, home, "Sam", &circle).await?,
        "after Sam rejoined"
    );
    Ok(())
}

async fn errors_are_one_line_or_one_json_object_and_say_what_to_do(app: TestApp) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let circle = circle_with(&app, home, "Anna", "Circle", &[]).await?;
    let down = "http://127.0.0.1:9";
    for json in [false, true] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
            .env("RUST_BACKTRACE", "1")
            .args(["--server", down, "--home"])
            .arg(home)
            .args(["--profile", "Anna"])
            .args(json.then_some("--json"))
            .args(["send", &circle, "hello"])
            .output()
            .await?;
        let err = String::from_utf8(output.stderr)?;
        ensure!(!output.status.success());
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(!err.contains("backtrace") && !err.contains("/v1/"), "{err}");
        if json {
            let value: Value = serde_json::from_str(&err)?;
            assert_eq!(value["code"], "unreachable");
        } else {
            assert!(
                err.starts_with("hearth: cannot reach the Hearth server")
                    && err.contains("your message is kept"),
                "{err}"
            );
        }
    }
    // Refusals keep the server's code and say what to do.
    let (ok, _, err) = text(
        &app,
        home,
        "Anna",
        &[
            "join",
            "hearth:invite/hit_nope#QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI",
        ],
    )
    .await?;
    assert!(
        !ok && err.contains("ask the facilitator for a new link"),
        "{err}"
    );
    let refused = command(&app, home, "Anna", true, &["join", "not a link"])
        .output()
        .await?;
    let value: Value = serde_json::from_slice(&refused.stderr)?;
    assert_eq!(value["code"], "bad_invite_link");
    // Invites: made with uses and a lifetime, listed, revoked; empty lists
    // say so.
    let (ok, out, _) = text(
        &app,
        home,
        "Anna",
        &["invite", &circle, "--uses", "5", "--expires", "2d"],
    )
    .await?;
    assert!(
        ok && out.contains("an invite for 5 people, valid until"),
        "{out}"
    );
    let listed = one(&app, home, "Anna", &["invites", &circle]).await?;
    let invite = string(&listed["invites"][0], "invite_id")?;
    assert_eq!(listed["invites"][0]["max_uses"], 5);
    one(
        &app,
        home,
        "Anna",
        &["invites", &circle, "--revoke", &invite],
    )
    .await?;
    let (_, out, _) = text(&app, home, "Anna", &["invites", &circle]).await?;
    assert_eq!(out.trim(), "no open invites");
    let (_, out, _) = text(&app, home, "Anna", &["requests", &circle]).await?;
    assert_eq!(out.trim(), "no join requests");
    // The two sends the unreachable server never saw were kept: they go
    // out with this read, and show once each.
    let (_, out, _) = text(&app, home, "Anna", &["read", &circle]).await?;
    let lines: Vec<&str> = out.trim().lines().collect();
    assert!(
        lines.len() == 2 && lines.iter().all(|l| l.ends_with("Anna: hello")),
        "{out}"
    );
    let (_, out, _) = text(&app, home, "nobody-yet", &["register"]).await?;
    assert!(out.contains("registered device"));
    let (_, out, _) = text(&app, home, "nobody-yet", &["circle", "list"]).await?;
    assert!(out.starts_with("you are in no circles yet"), "{out}");
    Ok(())
}

async fn reading_along_shows_your_own_messages_sent_from_another_terminal(
    app: TestApp,
) -> Result<()> {
    let home = tempfile::tempdir()?;
    let home = home.path();
    let circle = circle_with(&app, home, "Anna", "Circle", &["Sam"]).await?;
    let mut follow = command(&app, home, "Anna", true, &["read", "--follow", &circle])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(follow.stdout.take().context("stdout")?).lines();
    // Give the follower a moment to connect, then write from elsewhere:
    // Anna's own second terminal, and Sam.
    tokio::time::sleep(Duration::from_millis(500)).await;
    one(
        &app,
        home,
        "Anna",
        &["send", &circle, "from my other terminal"],
    )
    .await?;
    one(&app, home, "Sam", &["send", &circle, "from Sam"]).await?;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("the follower printed nothing new")??
            .context("the follower stopped")?;
        let value: Value = serde_json::from_str(&line)?;
        seen.push(string(&value, "body")?);
    }
    assert_eq!(seen, ["from my other terminal", "from Sam"]);
    follow.kill().await?;
    Ok(())
}
