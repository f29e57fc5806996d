//! `hearth`: the reference command-line client. Every command is a thin call
//! into `hearth-client`; output is for people, or JSON with `--json`.

mod schedule;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use hearth_client::{Client, Event, Message};
use hearth_protocol::content::Content;
use hearth_protocol::{CircleId, DeviceId};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;

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
    /// Print JSON instead of text.
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
    /// The devices of this account.
    Devices,
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
    },
    /// Ask to join a circle with an invite link.
    Join {
        /// The link, as the facilitator shared it.
        link: String,
        /// An introduction only the facilitator can read.
        #[arg(long, default_value = "")]
        note: String,
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
    /// Remove a member's device (facilitators).
    Remove {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The device.
        device: hearth_protocol::DeviceId,
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

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = home(&cli)?.join(&cli.profile);
    let client = Client::open(&cli.server, &dir).await?;
    let j = cli.json;
    if !matches!(cli.command, Command::Register { .. }) && client.device_id().await?.is_none() {
        bail!(
            "this profile has no device yet: run `hearth --profile {} register`",
            cli.profile
        );
    }
    match cli.command {
        Command::Calendar(command) => schedule::run(&client, command, j).await?,
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
            let device = client.register(link.as_deref()).await?;
            if let Some(name) = name {
                client.set_display_name(&name).await?;
            }
            let account = client.account_id().await?;
            say(
                j,
                json!({ "device_id": device, "account_id": account }),
                || format!("registered device {device}"),
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
            let pool = client.top_up_key_packages().await?;
            let circles = client.circles().await?;
            let device = client.device_id().await?;
            say(
                j,
                json!({ "device_id": device, "circles": circles, "joined": joined, "key_packages": pool.available }),
                || {
                    let mut out = format!(
                        "device {}\n{} KeyPackages waiting\n",
                        device.map(|d| d.to_string()).unwrap_or_default(),
                        pool.available
                    );
                    for circle in &joined {
                        out.push_str(&format!("joined {circle}\n"));
                    }
                    for circle in &circles {
                        out.push_str(&format!("circle {circle}\n"));
                    }
                    out.trim_end().to_owned()
                },
            );
        }
        Command::Devices => {
            let list = client.devices().await?;
            let value = serde_json::to_value(&list)?;
            say(j, value, || {
                list.devices
                    .iter()
                    .map(|d| {
                        format!(
                            "{}{}",
                            d.device_id,
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
                    "created circle {} ({circle})",
                    title.as_deref().unwrap_or("untitled")
                )
            });
        }
        Command::Circle(CircleCommand::List) => {
            client.accept_welcomes().await?;
            let mut listed = Vec::new();
            for circle in client.circles().await? {
                client.sync(&circle).await?;
                listed.push((circle.clone(), client.title(&circle).await?));
            }
            let value: Vec<Value> = listed
                .iter()
                .map(|(id, title)| json!({ "circle_id": id, "title": title }))
                .collect();
            say(j, json!({ "circles": value }), || {
                listed
                    .iter()
                    .map(|(id, title)| format!("{}  {id}", title.as_deref().unwrap_or("untitled")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
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
        Command::Invite { circle } => {
            let link = client.create_invite(&circle).await?;
            say(j, json!({ "link": link }), || {
                format!("share this link out of band:\n{link}")
            });
        }
        Command::Join { link, note } => {
            let request = client.redeem_invite(&link, &note).await?;
            say(j, json!({ "join_request_id": request }), || {
                format!(
                    "asked to join (request {request}); you are in once the facilitator approves"
                )
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
                    .map(|r| format!("{}  {}", r.id, r.note.as_deref().unwrap_or("(no note)")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Approve { circle, request } => {
            client.approve(&circle, request).await?;
            say(j, json!({ "approved": request }), || "approved".to_owned());
        }
        Command::Decline { circle, request } => {
            client.decline(&circle, request).await?;
            say(j, json!({ "declined": request }), || "declined".to_owned());
        }
        Command::Remove { circle, device } => {
            client.remove_devices(&circle, &[device]).await?;
            say(j, json!({ "removed": device }), || "removed".to_owned());
        }
        Command::Leave { circle } => {
            client.leave(&circle).await?;
            say(j, json!({ "left": circle }), || {
                "left the circle".to_owned()
            });
        }
        Command::Send { circle, text } => {
            let text = text.join(" ");
            let id = client.send_text(&circle, &text).await?;
            say(j, json!({ "message_id": id }), || "sent".to_owned());
        }
        Command::Read { circle, follow } => {
            client.accept_welcomes().await?;
            client.sync(&circle).await?;
            let names = client.names(&circle).await?;
            print_messages(&client.history(&circle).await?, &names, j);
            if follow {
                let client = std::sync::Arc::new(client);
                let mut events = client.live();
                while let Some(event) = events.recv().await {
                    if let Event::Message { circle_id, message } = event
                        && circle_id == circle
                    {
                        let names = client.names(&circle).await?;
                        print_messages(&[message], &names, j);
                    }
                }
            }
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
        assert!(matches!(cli.command, Command::Invite { circle } if circle.to_string() == ID));
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
