//! Writing and reading a circle.

use crate::{Output, print_notice, say, title_of};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::{Client, ClientError, Event, Message};
use hearth_protocol::content::Content;
use hearth_protocol::{CircleId, DeviceId};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

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
            let message_id = client.send_text(&circle, &text).await?;
            say(j, &Sent { message_id });
        }
        MessagesCommand::Read { circle, follow } => {
            client.sync_all().await?;
            let gone = client
                .past_circles()
                .await?
                .into_iter()
                .find(|(c, _)| *c == circle)
                .map(|(_, removed)| {
                    if removed {
                        ClientError::RemovedFromCircle
                    } else {
                        ClientError::LeftCircle
                    }
                });
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

/// A message sent.
#[derive(Serialize)]
struct Sent {
    message_id: Uuid,
}

impl Output for Sent {
    fn text(&self) -> String {
        "sent".to_owned()
    }
}

/// One line of a circle's history.
#[derive(Serialize)]
struct Line {
    seq: u64,
    sender: DeviceId,
    sender_name: Option<String>,
    kind: &'static str,
    body: String,
    received_at: i64,
}

impl Line {
    fn of(row: &Message, names: &HashMap<DeviceId, String>) -> Self {
        let (kind, body) = match &row.envelope.content {
            Content::Text { body, .. } => ("text", body.clone()),
            Content::Reply { body, .. } => ("reply", body.clone()),
            Content::Reaction { emoji, .. } => ("reaction", emoji.clone()),
            // The history holds conversation only; calendar items are shown
            // by `hearth sessions`, `agreement` and `check-in`.
            _ => ("unknown", String::new()),
        };
        Self {
            seq: row.seq,
            sender: row.sender,
            sender_name: names.get(&row.sender).cloned(),
            kind,
            body,
            received_at: row.received_at,
        }
    }
}

impl Output for Line {
    fn text(&self) -> String {
        let sender = self.sender_name.clone().unwrap_or_else(|| {
            let id = self.sender.to_string();
            id[..8].to_owned()
        });
        format!("[{}] {sender}: {}", self.seq, self.body)
    }
}

fn print_messages(rows: &[Message], names: &HashMap<DeviceId, String>, as_json: bool) {
    for row in rows {
        let line = Line::of(row, names);
        if as_json || line.kind != "unknown" {
            say(as_json, &line);
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
