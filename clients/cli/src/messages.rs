//! Writing and reading a circle.

use crate::{print_notice, say, title_of};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::{Client, ClientError, Event, Message};
use hearth_protocol::content::Content;
use hearth_protocol::{CircleId, DeviceId};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
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

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: MessagesCommand, j: bool) -> Result<()> {
    match command {
        MessagesCommand::Send { circle, text } => {
            let text = text.join(" ");
            let id = client.send_text(&circle, &text).await?;
            say(j, json!({ "message_id": id }), || "sent".to_owned());
        }
        MessagesCommand::Read { circle, follow } => {
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
