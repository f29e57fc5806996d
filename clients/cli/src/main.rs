//! `hearth`: the reference command-line client. Every command is a thin call
//! into `hearth-client`; output is for people, or JSON with `--json`.

mod report;
mod schedule;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use hearth_client::{Client, ClientError, Event, Message};
use hearth_protocol::circles::CreateInvite;
use hearth_protocol::content::Content;
use hearth_protocol::{CircleId, DeviceId};
use serde_json::{Value, json};
use std::collections::HashMap;
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
    /// Register this profile's device (a new account, or --link to join one).
    Register {
        /// A link token from another device of the account.
        #[arg(long)]
        link: Option<String>,
        /// The name others see (sent encrypted; never to the server).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a one-time token that links another device to this account.
    Link,
    /// This device, its circles and its KeyPackage pool.
    Status,
    /// The devices of this account; --revoke ID takes a lost one out of
    /// every circle.
    Devices {
        /// Revoke this device of the account.
        #[arg(long)]
        revoke: Option<DeviceId>,
    },
    /// Circles: create, list, show.
    #[command(subcommand)]
    Circle(CircleCommand),
    /// Join the circle's video call: prints the video server, the room and a
    /// token (never a media key).
    Call {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Sessions, the agreement and check-ins.
    #[command(flatten)]
    Calendar(schedule::ScheduleCommand),
    /// Mint an invite link to a circle (facilitators).
    Invite {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// How many people may use it (default 1).
        #[arg(long)]
        uses: Option<u32>,
        /// How long it lasts: 90m, 12h, 7d or seconds (default 7 days, at
        /// most 30 days).
        #[arg(long, value_parser = parse_duration)]
        expires: Option<u64>,
    },
    /// A circle's open invites (facilitators); --revoke ID stops one.
    Invites {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// Revoke this invite: its link stops working.
        #[arg(long)]
        revoke: Option<uuid::Uuid>,
    },
    /// Ask to join a circle with an invite link.
    Join {
        /// The link, as the facilitator shared it.
        link: String,
        /// An introduction only the facilitator can read.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Who is in a circle: names, roles and device ids.
    Members {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Join requests waiting in a circle (facilitators).
    Requests {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Approve a join request (facilitators).
    Approve {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The request.
        request: uuid::Uuid,
    },
    /// Decline a join request (facilitators).
    Decline {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The request.
        request: uuid::Uuid,
    },
    /// Remove a member (facilitators): by name, or by device id.
    Remove {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The member's name as `hearth members` shows it, or a device id.
        #[arg(allow_hyphen_values = true)]
        who: String,
    },
    /// Leave a circle.
    Leave {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Send a message.
    Send {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Show a circle's messages (with --follow, keep showing new ones).
    Read {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// Keep watching for new messages.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CircleCommand {
    /// Create a circle; you are its facilitator.
    Create {
        /// The circle's title (sent encrypted to its members).
        #[arg(long)]
        title: Option<String>,
    },
    /// The circles this device is in.
    List,
    /// A circle's epoch and its epoch authenticator (compare it with others').
    Show {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
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

fn message_json(row: &Message, names: &HashMap<DeviceId, String>) -> Value {
    let (kind, body) = match &row.envelope.content {
        Content::Text { body, .. } => ("text", body.clone()),
        Content::Reply { body, .. } => ("reply", body.clone()),
        Content::Reaction { emoji, .. } => ("reaction", emoji.clone()),
        // The history holds conversation only; calendar items are shown by
        // `hearth sessions`, `agreement` and `check-in`.
        _ => ("unknown", String::new()),
    };
    json!({
        "seq": row.seq,
        "sender": row.sender,
        "sender_name": names.get(&row.sender),
        "kind": kind,
        "body": body,
        "received_at": row.received_at,
    })
}

fn print_messages(rows: &[Message], names: &HashMap<DeviceId, String>, as_json: bool) {
    for row in rows {
        let value = message_json(row, names);
        if as_json {
            println!("{value}");
        } else if value["kind"] != "unknown" {
            let id = row.sender.to_string();
            let sender = names
                .get(&row.sender)
                .cloned()
                .unwrap_or_else(|| id[..8].to_owned());
            println!(
                "[{}] {sender}: {}",
                row.seq,
                value["body"].as_str().unwrap_or_default()
            );
        }
    }
}

/// Prints `value` as JSON, or `text` for people.
fn say(as_json: bool, value: Value, text: impl FnOnce() -> String) {
    if as_json {
        println!("{value}");
    } else {
        println!("{}", text());
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
    let circle = match event {
        Event::Removed { circle_id }
        | Event::Rejoined { circle_id }
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

/// The devices `who` names in the circle: a device id, or everyone going by
/// that name (case-insensitive).
async fn resolve(client: &Client, circle: &CircleId, who: &str) -> Result<Vec<DeviceId>> {
    if let Ok(device) = who.parse::<DeviceId>() {
        return Ok(vec![device]);
    }
    let names = client.names(circle).await?;
    let roster = client.roster(circle).await?;
    let found: Vec<DeviceId> = roster
        .iter()
        .map(|r| r.device_id)
        .filter(|d| {
            names
                .get(d)
                .is_some_and(|name| name.eq_ignore_ascii_case(who))
        })
        .collect();
    if found.is_empty() {
        bail!("nobody in this circle goes by {who:?} (`hearth members <circle>` lists them)");
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
    if !matches!(cli.command, Command::Register { .. }) && client.device_id().await?.is_none() {
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
        Command::Calendar(command) => schedule::run(client, command, j).await?,
        Command::Call { circle } => {
            let call = client.join_call(&circle).await?;
            say(
                j,
                json!({ "url": call.url, "room": call.room, "token": call.token, "expires_at": call.expires_at }),
                || {
                    format!(
                        "video server {}\nroom {}\ntoken {}",
                        call.url, call.room, call.token
                    )
                },
            );
        }
        Command::Register { link, name } => {
            if let Some(device) = client.device_id().await? {
                say(j, json!({ "device_id": device, "already": true }), || {
                    format!("this profile is registered already, as device {device}")
                });
                return Ok(());
            }
            let device = client.register(link.as_deref()).await?;
            if let Some(name) = name {
                client.set_display_name(&name).await?;
            }
            let account = client.account_id().await?;
            say(
                j,
                json!({ "device_id": device, "account_id": account }),
                || {
                    if link.is_some() {
                        format!(
                            "registered device {device} on your account; your other device adds \
                             it to your circles the next time it syncs"
                        )
                    } else {
                        format!("registered device {device}")
                    }
                },
            );
        }
        Command::Link => {
            let token = client.link_token().await?;
            say(j, json!({ "link_token": token }), || {
                format!("on the new device: hearth --profile <name> register --link {token}")
            });
        }
        Command::Status => {
            let joined = client.accept_welcomes().await?;
            for circle in &joined {
                // What came with the Welcome: the circle's title, names.
                match client.sync(circle).await {
                    Err(ClientError::RemovedFromCircle) => {}
                    other => {
                        other?;
                    }
                }
            }
            let pool = client.top_up_key_packages().await?;
            let device = client.device_id().await?;
            let mut circles = Vec::new();
            for circle in client.circles().await? {
                let title = client.title(&circle).await?;
                circles.push(json!({ "circle_id": circle, "title": title }));
            }
            let mut past = Vec::new();
            for (circle, removed) in client.past_circles().await? {
                let title = client.title(&circle).await?;
                past.push(json!({ "circle_id": circle, "title": title, "removed": removed }));
            }
            let mut joined_titles = Vec::new();
            for circle in &joined {
                joined_titles.push(title_of(client, circle).await);
            }
            say(
                j,
                json!({ "device_id": device, "circles": circles, "past_circles": past, "joined": joined, "key_packages": pool.available }),
                || {
                    let mut out = format!(
                        "device {}\n{} KeyPackages waiting for invitations\n",
                        device.map(|d| d.to_string()).unwrap_or_default(),
                        pool.available
                    );
                    for title in &joined_titles {
                        out.push_str(&format!("joined {title}\n"));
                    }
                    if circles.is_empty() {
                        out.push_str("in no circles yet\n");
                    }
                    for circle in circles.iter().chain(&past) {
                        let state = match circle["removed"].as_bool() {
                            Some(true) => "  (you were removed)",
                            Some(false) => "  (you left)",
                            None => "",
                        };
                        out.push_str(&format!(
                            "{}  {}{state}\n",
                            circle["title"].as_str().unwrap_or("(untitled)"),
                            circle["circle_id"].as_str().unwrap_or_default()
                        ));
                    }
                    out.trim_end().to_owned()
                },
            );
        }
        Command::Devices { revoke } => {
            if let Some(device) = revoke {
                client.revoke_device(device).await?;
                say(j, json!({ "revoked": device }), || {
                    format!(
                        "revoked {device}: it is signed out, out of every circle, and out of \
                         the encryption of the circles this device shares with it (others' \
                         devices remove it elsewhere on their next sync)"
                    )
                });
                return Ok(());
            }
            let list = client.devices().await?;
            let value = serde_json::to_value(&list)?;
            say(j, value, || {
                list.devices
                    .iter()
                    .map(|d| {
                        format!(
                            "{}  since {}{}",
                            d.device_id,
                            when(d.created_at),
                            if d.current { "  (this device)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Circle(CircleCommand::Create { title }) => {
            let circle = client.create_circle().await?;
            if let Some(title) = &title {
                client.set_title(&circle, title).await?;
            }
            say(j, json!({ "circle_id": circle, "title": title }), || {
                format!(
                    "created circle {} ({circle}); invite people with `hearth invite {circle}`",
                    title.as_deref().unwrap_or("untitled")
                )
            });
        }
        Command::Circle(CircleCommand::List) => {
            client.accept_welcomes().await?;
            let mut listed = Vec::new();
            for circle in client.circles().await? {
                match client.sync(&circle).await {
                    // Noticed now: it moves to the past circles below.
                    Err(hearth_client::ClientError::RemovedFromCircle) => continue,
                    other => other?,
                };
                listed.push((circle.clone(), client.title(&circle).await?));
            }
            let mut past = Vec::new();
            for (circle, removed) in client.past_circles().await? {
                past.push((circle.clone(), client.title(&circle).await?, removed));
            }
            let value: Vec<Value> = listed
                .iter()
                .map(|(id, title)| json!({ "circle_id": id, "title": title }))
                .collect();
            let past_value: Vec<Value> = past
                .iter()
                .map(|(id, title, removed)| json!({ "circle_id": id, "title": title, "removed": removed }))
                .collect();
            say(
                j,
                json!({ "circles": value, "past_circles": past_value }),
                || {
                    let mut lines: Vec<String> = listed
                        .iter()
                        .map(|(id, title)| {
                            format!("{}  {id}", title.as_deref().unwrap_or("untitled"))
                        })
                        .collect();
                    if lines.is_empty() && past.is_empty() {
                        lines.push(
                            "you are in no circles yet: create one with `hearth circle create`, \
                             or join with `hearth join <link>`"
                                .to_owned(),
                        );
                    } else if lines.is_empty() {
                        lines.push(
                            "you are in no circles now (a new invite link brings you back); \
                             past circles:"
                                .to_owned(),
                        );
                    }
                    lines.extend(past.iter().map(|(id, title, removed)| {
                        format!(
                            "{}  {id}  ({})",
                            title.as_deref().unwrap_or("untitled"),
                            if *removed {
                                "you were removed"
                            } else {
                                "you left"
                            }
                        )
                    }));
                    lines.join("\n")
                },
            );
        }
        Command::Circle(CircleCommand::Show { circle }) => {
            client.sync(&circle).await?;
            let epoch = client.epoch(&circle).await?;
            let authenticator = hex(&client.epoch_authenticator(&circle).await?);
            say(
                j,
                json!({ "circle_id": circle, "epoch": epoch, "epoch_authenticator": authenticator }),
                || format!("circle {circle}\nepoch {epoch}\nepoch authenticator {authenticator}"),
            );
        }
        Command::Invite {
            circle,
            uses,
            expires,
        } => {
            let options = CreateInvite {
                expires_in_secs: expires,
                max_uses: uses,
            };
            let invite = client.create_invite_with(&circle, options).await?;
            say(
                j,
                json!({ "link": invite.link, "invite_id": invite.id, "max_uses": invite.max_uses, "expires_at": invite.expires_at }),
                || {
                    let people = if invite.max_uses == 1 {
                        "one person".to_owned()
                    } else {
                        format!("{} people", invite.max_uses)
                    };
                    format!(
                        "an invite for {people}, valid until {} (revoke it with `hearth invites \
                         {circle} --revoke {}`); share this link out of band:\n{}",
                        when(invite.expires_at),
                        invite.id,
                        invite.link
                    )
                },
            );
        }
        Command::Invites { circle, revoke } => {
            if let Some(invite) = revoke {
                client.revoke_invite(&circle, invite).await?;
                say(j, json!({ "revoked": invite }), || {
                    "revoked: its link no longer works".to_owned()
                });
                return Ok(());
            }
            let invites = client.invites(&circle).await?;
            let value = serde_json::to_value(&invites)?;
            say(j, json!({ "invites": value }), || {
                if invites.is_empty() {
                    return "no open invites".to_owned();
                }
                invites
                    .iter()
                    .map(|i| {
                        format!(
                            "{}  {} of {} used, until {}",
                            i.invite_id,
                            i.uses,
                            i.max_uses,
                            when(i.expires_at)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Join { link, note } => {
            let request = client.redeem_invite(&link, &note).await?;
            say(j, json!({ "join_request_id": request }), || {
                "asked to join; once the facilitator approves, `hearth status` brings you in"
                    .to_owned()
            });
        }
        Command::Members { circle } => {
            client.sync(&circle).await?;
            let roster = client.roster(&circle).await?;
            let in_group = client.members(&circle).await?;
            let names = client.names(&circle).await?;
            let me = client.device_id().await?;
            let rows: Vec<Value> = roster
                .iter()
                .map(|r| {
                    json!({
                        "device_id": r.device_id,
                        "name": names.get(&r.device_id),
                        "role": r.role,
                        "you": Some(r.device_id) == me,
                        "in_group": in_group.contains(&r.device_id),
                    })
                })
                .collect();
            say(j, json!({ "members": rows }), || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{}  {}  {}{}{}",
                            r["name"].as_str().unwrap_or("(no name yet)"),
                            r["role"].as_str().unwrap_or_default(),
                            r["device_id"].as_str().unwrap_or_default(),
                            if r["you"] == true { "  (you)" } else { "" },
                            if r["in_group"] == false {
                                "  (not in the encrypted group yet)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Requests { circle } => {
            let requests = client.join_requests(&circle).await?;
            let value: Vec<Value> = requests
                .iter()
                .map(|r| json!({ "join_request_id": r.id, "device_ids": r.device_ids, "note": r.note }))
                .collect();
            say(j, json!({ "join_requests": value }), || {
                if requests.is_empty() {
                    return "no join requests".to_owned();
                }
                requests
                    .iter()
                    .map(|r| {
                        format!(
                            "{}  {}",
                            r.id,
                            r.note
                                .as_deref()
                                .filter(|n| !n.is_empty())
                                .unwrap_or("(no note)")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Approve { circle, request } => {
            let added = client.approve(&circle, request).await?;
            say(j, json!({ "approved": request, "added": added }), || {
                if added.is_empty() {
                    "everyone that request names is in the circle already; it is closed".to_owned()
                } else {
                    "approved: they join the next time their device checks in".to_owned()
                }
            });
        }
        Command::Decline { circle, request } => {
            client.decline(&circle, request).await?;
            say(j, json!({ "declined": request }), || "declined".to_owned());
        }
        Command::Remove { circle, who } => {
            client.sync(&circle).await?;
            let devices = resolve(client, &circle, &who).await?;
            if client
                .device_id()
                .await?
                .is_some_and(|me| devices.contains(&me))
            {
                bail!("that is you: to leave the circle, run `hearth leave {circle}`");
            }
            client.remove_devices(&circle, &devices).await?;
            say(j, json!({ "removed": devices }), || {
                format!(
                    "removed {who} ({} device{}): they read nothing new from now on",
                    devices.len(),
                    if devices.len() == 1 { "" } else { "s" }
                )
            });
        }
        Command::Leave { circle } => {
            client.leave(&circle).await?;
            say(j, json!({ "left": circle }), || {
                "left the circle; its messages so far stay readable here".to_owned()
            });
        }
        Command::Send { circle, text } => {
            let text = text.join(" ");
            let id = client.send_text(&circle, &text).await?;
            say(j, json!({ "message_id": id }), || "sent".to_owned());
        }
        Command::Read { circle, follow } => {
            client.accept_welcomes().await?;
            let gone = match client.sync(&circle).await {
                Ok(_) => None,
                Err(err @ (ClientError::RemovedFromCircle | ClientError::LeftCircle)) => Some(err),
                Err(err) => return Err(err.into()),
            };
            let names = client.names(&circle).await?;
            let history = client.history(&circle).await?;
            print_messages(&history, &names, j);
            if let Some(gone) = gone {
                // Said once, below, whether noticed just now or before.
                for event in client.take_notices() {
                    if !matches!(&event, Event::Removed { circle_id } if *circle_id == circle) {
                        print_notice(client, &event, j).await;
                    }
                }
                let title = title_of(client, &circle).await;
                let why = if matches!(gone, ClientError::RemovedFromCircle) {
                    format!("you were removed from {title}")
                } else {
                    format!("you left {title}")
                };
                if j {
                    eprintln!("{}", json!({ "notice": "not_in_circle", "message": why }));
                } else {
                    eprintln!("hearth: {why}; these are its messages up to then");
                }
                return Ok(());
            }
            if history.is_empty() && !j {
                println!("no messages yet");
            }
            if follow {
                follow_circle(client, &circle, j).await?;
            }
        }
    }
    Ok(())
}

/// Shows the circle's new messages as they arrive, yours from elsewhere too,
/// until interrupted.
async fn follow_circle(client: &Arc<Client>, circle: &CircleId, j: bool) -> Result<()> {
    let mut events = client.live();
    while let Some(event) = events.recv().await {
        match event {
            Event::Message { circle_id, message } if circle_id == *circle => {
                let names = client.names(circle).await?;
                print_messages(&[message], &names, j);
            }
            Event::Removed { ref circle_id } if circle_id == circle => {
                print_notice(client, &event, j).await;
                break;
            }
            other => print_notice(client, &other, j).await,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "-AAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_circle_id_that_begins_with_a_hyphen_is_an_id() {
        let cli = Cli::try_parse_from(["hearth", "invite", ID]).unwrap();
        assert!(matches!(cli.command, Command::Invite { circle, .. } if circle.to_string() == ID));
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
