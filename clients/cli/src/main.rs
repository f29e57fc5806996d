//! `hearth`: the reference command-line client. Every command is a thin call
//! into `hearth-client`; output is for people, or JSON with `--json`.

mod account;
mod enrollment;
mod membership;
mod messages;
mod report;
mod schedule;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use hearth_client::{Client, Event};
use hearth_protocol::{CircleId, DeviceId};
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Hearth: end-to-end encrypted circles, from the command line.
///
/// Each profile is one device with its own data directory, so two people can
/// use one machine: `hearth --profile alice ...` and `hearth --profile sam ...`.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The Hearth server.
    #[arg(
        long,
        env = "HEARTH_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    server: String,
    /// The profile (one device) to act as.
    #[arg(long, env = "HEARTH_PROFILE", default_value = "default", global = true)]
    profile: String,
    /// Where profiles keep their data (default: ~/.local/share/hearth).
    #[arg(long, env = "HEARTH_HOME", global = true)]
    home: Option<PathBuf>,
    /// Print JSON instead of text: a line per result on stdout; a failure
    /// is one line on stderr, {"code": "...", "message": "..."}, the
    /// server's error shape.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// This device and its account.
    #[command(flatten)]
    Account(account::AccountCommand),
    /// Circles and who is in them.
    #[command(flatten)]
    Membership(membership::MembershipCommand),
    /// Bringing people in.
    #[command(flatten)]
    Enrollment(enrollment::EnrollmentCommand),
    /// Writing and reading.
    #[command(flatten)]
    Messages(messages::MessagesCommand),
    /// Sessions, the agreement and check-ins.
    #[command(flatten)]
    Calendar(schedule::ScheduleCommand),
}

fn home(cli: &Cli) -> Result<PathBuf> {
    if let Some(home) = &cli.home {
        return Ok(home.clone());
    }
    let base = std::env::var_os("HOME").context("HOME is not set; pass --home")?;
    Ok(PathBuf::from(base).join(".local/share/hearth"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `90m`, `12h`, `7d`, or seconds.
fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c),
        _ => (text, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("{text:?}: use 90m, 12h, 7d or a number of seconds")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?}: use 90m, 12h, 7d or a number of seconds"))
}

/// A moment as people read it, in UTC.
fn when(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// What a command prints: a typed result, one JSON object with `--json`
/// (its serde form) and lines for people otherwise.
trait Output: serde::Serialize {
    /// The lines for people.
    fn text(&self) -> String;
}

/// Prints a command's result.
fn say(as_json: bool, output: &impl Output) {
    if as_json {
        match serde_json::to_string(output) {
            Ok(line) => println!("{line}"),
            Err(err) => eprintln!("hearth: the result could not be written as JSON: {err}"),
        }
    } else {
        println!("{}", output.text());
    }
}

/// A circle's name for people: its title, or that it has none.
async fn title_of(client: &Client, circle: &CircleId) -> String {
    match client.title(circle).await {
        Ok(Some(title)) => format!("\"{title}\""),
        _ => format!("the untitled circle {circle}"),
    }
}

/// Tells what the SDK noticed while the command ran (on stderr, so that
/// `--json` output stays one value).
async fn print_notices(client: &Client, as_json: bool) {
    for event in client.take_notices() {
        print_notice(client, &event, as_json).await;
    }
}

/// Tells one notice, if `event` is one.
async fn print_notice(client: &Client, event: &Event, as_json: bool) {
    if matches!(event, Event::Restored) {
        let text = report::RESTORED;
        if as_json {
            eprintln!("{}", json!({ "notice": "restored", "message": text }));
        } else {
            eprintln!("hearth: {text}");
        }
        return;
    }
    let circle = match event {
        Event::Removed { circle_id }
        | Event::Rejoined { circle_id }
        | Event::Undecryptable { circle_id, .. }
        | Event::WelcomeUnusable { circle_id, .. }
        | Event::DevicesAdded { circle_id, .. } => circle_id.clone(),
        _ => return,
    };
    let title = title_of(client, &circle).await;
    if let Some((kind, text)) = report::notice(event, &title) {
        if as_json {
            eprintln!(
                "{}",
                json!({ "notice": kind, "circle_id": circle, "message": text })
            );
        } else {
            eprintln!("hearth: {text}");
        }
    }
}

/// The devices each of `who` names in the circle: a device id, or everyone
/// going by that name (case-insensitive). The roster is asked for once, and
/// only when a name needs it.
async fn resolve(client: &Client, circle: &CircleId, who: &[&str]) -> Result<Vec<DeviceId>> {
    let mut found = Vec::new();
    let mut named = None;
    for who in who {
        if let Ok(device) = who.parse::<DeviceId>() {
            found.push(device);
            continue;
        }
        let (names, roster) = match &named {
            Some(known) => known,
            None => named.insert((client.names(circle).await?, client.roster(circle).await?)),
        };
        let before = found.len();
        found.extend(roster.iter().map(|r| r.device_id).filter(|d| {
            names
                .get(d)
                .is_some_and(|name| name.eq_ignore_ascii_case(who))
        }));
        if found.len() == before {
            bail!("nobody in this circle goes by {who:?} (`hearth members <circle>` lists them)");
        }
    }
    Ok(found)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    let (as_json, server) = (cli.json, cli.server.clone());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            report::Failure {
                code: "internal".into(),
                message: format!("could not start: {err}"),
            }
            .print(as_json);
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report::describe(&err, &server).print(as_json);
            ExitCode::FAILURE
        }
    }
}

/// A command line that does not parse: clap's own text for people; with
/// `--json` anywhere on the line, one JSON object like every other failure.
/// Help and the version go out as clap prints them.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os().any(|a| a == "--json");
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) || !wants_json
    {
        let _ = err.print();
        return if err.use_stderr() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        };
    }
    let rendered = err.render().to_string();
    let message = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("the command line does not parse")
        .trim_start_matches("error: ")
        .trim()
        .to_owned();
    report::Failure {
        code: "invalid_input".into(),
        message: format!("{message} (see `hearth --help`)"),
    }
    .print(true);
    ExitCode::from(2)
}

async fn run(cli: Cli) -> Result<()> {
    let dir = home(&cli)?.join(&cli.profile);
    let client = Arc::new(Client::open(&cli.server, &dir).await?);
    let j = cli.json;
    if !matches!(
        cli.command,
        Command::Account(account::AccountCommand::Register { .. })
    ) && client.device_id().await?.is_none()
    {
        bail!(
            "this profile has no device yet: run `hearth --profile {} register`",
            cli.profile
        );
    }
    let done = command(&client, cli.command, j).await;
    print_notices(&client, j).await;
    done
}

async fn command(client: &Arc<Client>, command: Command, j: bool) -> Result<()> {
    match command {
        Command::Calendar(command) => schedule::run(client, command, j).await,
        Command::Account(command) => account::run(client, command, j).await,
        Command::Enrollment(command) => enrollment::run(client, command, j).await,
        Command::Membership(command) => membership::run(client, command, j).await,
        Command::Messages(command) => messages::run(client, command, j).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "-AAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_circle_id_that_begins_with_a_hyphen_is_an_id() {
        let cli = Cli::try_parse_from(["hearth", "invite", ID]).unwrap();
        assert!(
            matches!(cli.command, Command::Enrollment(enrollment::EnrollmentCommand::Invite { circle, .. }) if circle.to_string() == ID)
        );
        let cli = Cli::try_parse_from(["hearth", "remove", ID, "-sam"]);
        assert!(cli.is_ok(), "{cli:?}");
        let cli = Cli::try_parse_from(["hearth", "sessions", ID]);
        assert!(cli.is_ok(), "{cli:?}");
    }

    #[test]
    fn flags_before_a_circle_id_are_still_flags() {
        let cli = Cli::try_parse_from(["hearth", "invite", "--json", "AAAAAAAAAAAAAAAAAAAAAA"]);
        let cli = cli.unwrap();
        assert!(cli.json);
    }
}
