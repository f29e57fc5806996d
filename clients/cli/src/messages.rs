//! Writing and reading a circle.

use crate::{Output, print_notice, say, title_of};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::{
    Client, ClientError, Event, Message, Notification, NotificationKind, OutgoingState,
};
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
    /// What a push would show now, as a phone's notification extension
    /// does on a wake: every circle caught up in one request, then each
    /// message, check-in, schedule change or join not yet shown — by this
    /// command or by `read`, in this process or another on the same
    /// directory.
    Notifications {
        /// Keep looking, every this many milliseconds, until interrupted
        /// (a stand-in for push wakes).
        #[arg(long, value_name = "MS")]
        every_ms: Option<u64>,
        /// Time budget of one look, in milliseconds (an iOS extension has
        /// about 30 s; what is left waits for the next look).
        #[arg(long, value_name = "MS", default_value_t = 25_000)]
        within_ms: u64,
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
                let shown = history.last().map_or(0, |m| m.seq);
                follow_circle(client, &circle, shown, j).await?;
            }
        }
        MessagesCommand::Notifications {
            every_ms,
            within_ms,
        } => {
            let within = std::time::Duration::from_millis(within_ms);
            let Some(every) = every_ms else {
                show_notifications(client, within, j).await?;
                return Ok(());
            };
            loop {
                match show_notifications(client, within, j).await {
                    Ok(()) => {}
                    // The other process had the directory; look again on
                    // the next wake, as an extension would.
                    Err(err)
                        if err
                            .downcast_ref::<ClientError>()
                            .is_some_and(ClientError::is_retryable) =>
                    {
                        eprintln!("hearth: nothing shown this time ({err})");
                    }
                    Err(err) => return Err(err),
                }
                tokio::time::sleep(std::time::Duration::from_millis(every)).await;
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

/// One look: what to show, printed.
async fn show_notifications(
    client: &Arc<Client>,
    within: std::time::Duration,
    j: bool,
) -> Result<()> {
    let found = client.notifications(within).await;
    crate::print_notices(client, j).await;
    let found = found?;
    for item in found.items {
        say(j, &Shown::of(item));
    }
    if !found.complete {
        eprintln!("hearth: out of time; the rest waits for the next look");
    }
    Ok(())
}

/// One notification.
#[derive(Serialize)]
struct Shown {
    circle_id: CircleId,
    circle_title: Option<String>,
    sender: Option<DeviceId>,
    sender_name: Option<String>,
    kind: &'static str,
    preview: String,
    seq: u64,
}

impl Shown {
    fn of(item: Notification) -> Self {
        Self {
            kind: match item.kind {
                NotificationKind::Message => "message",
                NotificationKind::Reply => "reply",
                NotificationKind::Reaction => "reaction",
                NotificationKind::Schedule => "schedule",
                NotificationKind::Agreement => "agreement",
                NotificationKind::CheckIn => "check_in",
                NotificationKind::Joined => "joined",
            },
            circle_id: item.circle_id,
            circle_title: item.circle_title,
            sender: item.sender,
            sender_name: item.sender_name,
            preview: item.preview,
            seq: item.seq,
        }
    }
}

impl Output for Shown {
    fn text(&self) -> String {
        let circle = self
            .circle_title
            .clone()
            .unwrap_or_else(|| "a circle".into());
        let who = self.sender_name.clone().unwrap_or_else(|| "someone".into());
        match self.kind {
            "joined" => format!("{circle}: you joined"),
            "schedule" => format!("{circle}: {who} changed the schedule"),
            "check_in" => format!("{circle}: {who} asks for a check-in: {}", self.preview),
            _ => format!("{circle}: {who}: {}", self.preview),
        }
    }
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
/// until interrupted. What is shown comes from the stored history after the
/// last line shown — on every message the stream brings and every time it
/// connects — so a message another process on this profile decrypted (a
/// `hearth notifications` beside it, say) is shown too, once.
async fn follow_circle(
    client: &Arc<Client>,
    circle: &CircleId,
    mut shown: u64,
    j: bool,
) -> Result<()> {
    let mut events = client.live();
    while let Some(event) = events.recv().await {
        match event {
            Event::Message { circle_id, .. } if circle_id == *circle => {
                shown = show_after(client, circle, shown, j).await?;
            }
            Event::Connected => {
                shown = show_after(client, circle, shown, j).await?;
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

/// Prints the circle's stored history after `shown`; returns the last seq
/// printed.
async fn show_after(client: &Client, circle: &CircleId, shown: u64, j: bool) -> Result<u64> {
    let new = client.history_after(circle, shown).await?;
    let Some(last) = new.last().map(|m| m.seq) else {
        return Ok(shown);
    };
    let names = client.names(circle).await?;
    print_messages(&new, &names, j);
    Ok(last)
}
