//! Writing and reading a circle.

use crate::{Output, print_notice, say, title_of};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::{Client, ClientError, Event, Message, OutgoingState};
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
    /// Send what is waiting, then show messages not yet delivered: pending
    /// (they go out with your next command) or failed (with why).
    Outbox {
        /// Send a failed message again.
        #[arg(long, value_name = "MESSAGE_ID", conflicts_with = "discard")]
        retry: Option<Uuid>,
        /// Drop a message from the outbox.
        #[arg(long, value_name = "MESSAGE_ID")]
        discard: Option<Uuid>,
    },
}

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: MessagesCommand, j: bool) -> Result<()> {
    match command {
        MessagesCommand::Send { circle, text } => {
            let text = text.join(" ");
            match client.send_text(&circle, &text).await {
                Ok(message_id) => say(j, &Sent { message_id }),
                Err(err) if err.is_retryable() => {
                    return Err(anyhow::Error::new(err).context(crate::report::MessageKept));
                }
                Err(err) => return Err(err.into()),
            }
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
        MessagesCommand::Outbox { retry, discard } => {
            if let Some(id) = retry {
                client.retry_outgoing(id).await?;
            }
            if let Some(id) = discard {
                client.discard_outgoing(id).await?;
            }
            // What cannot go now stays pending; the listing says so.
            if let Err(err) = client.flush_outbox().await
                && !err.is_retryable()
            {
                return Err(err.into());
            }
            let waiting = client.outbox().await?;
            if waiting.is_empty() && !j {
                println!("nothing waiting to be sent");
            }
            for message in waiting {
                let body = match &message.envelope.content {
                    Content::Text { body, .. } | Content::Reply { body, .. } => body.clone(),
                    _ => String::new(),
                };
                let (state, why) = match message.state {
                    OutgoingState::Pending => ("pending", None),
                    OutgoingState::Failed(why) => ("failed", Some(why)),
                };
                say(
                    j,
                    &Waiting {
                        message_id: message.message_id,
                        circle_id: message.circle_id,
                        state,
                        why,
                        body,
                    },
                );
            }
        }
    }
    Ok(())
}

/// One message of the outbox.
#[derive(Serialize)]
struct Waiting {
    message_id: Uuid,
    circle_id: CircleId,
    state: &'static str,
    why: Option<String>,
    body: String,
}

impl Output for Waiting {
    fn text(&self) -> String {
        match &self.why {
            Some(why) => format!("{} failed ({why}): {}", self.message_id, self.body),
            None => format!("{} pending: {}", self.message_id, self.body),
        }
    }
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
