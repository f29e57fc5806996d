//! What a phone shows when a push wakes it: the one call a Notification
//! Service Extension (iOS) or a push worker (Android) makes. One sync for
//! every circle, Welcomes accepted, everything decrypted and stored, within
//! the caller's time budget; then what to show, item by item, with the
//! circle's title and the sender's name as this device knows them.

use crate::messages::Message;
use crate::{Client, Result};
use hearth_protocol::content::Content;
use hearth_protocol::{CircleId, DeviceId};
use std::collections::HashMap;
use std::time::Duration;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// A message.
    Message,
    /// A reply to a message.
    Reply,
    /// A reaction to a message.
    Reaction,
    /// A session series was scheduled, or a session moved or cancelled.
    Schedule,
    /// The circle's agreement was set or changed.
    Agreement,
    /// A facilitator asked for a check-in.
    CheckIn,
    /// This device joined a circle.
    Joined,
}

/// One thing to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The circle.
    pub circle_id: CircleId,
    /// The circle's title, when this device knows it.
    pub circle_title: Option<String>,
    /// Who sent it (none for a join).
    pub sender: Option<DeviceId>,
    /// Their name in the circle, when this device knows it.
    pub sender_name: Option<String>,
    /// What it is about.
    pub kind: NotificationKind,
    /// What it says, for the app to show or not: a message's text, a
    /// reaction's emoji, a check-in's question, the agreement's text; empty
    /// for schedule changes and joins.
    pub preview: String,
    /// Its sequence number in the circle (0 for a join).
    pub seq: u64,
}

/// What a wake brought to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notifications {
    /// Oldest first within each circle.
    pub items: Vec<Notification>,
    /// False when the time budget ran out before every circle was read (the
    /// rest waits for the next wake or the app).
    pub complete: bool,
}

impl Client {
    /// Catches up every circle in one sync (more only for long backlogs),
    /// accepts Welcomes, decrypts and stores, and returns what to show. No
    /// sync round starts after `within` has passed; the upkeep the catch-up
    /// calls for (sharing this member's name with newcomers, say) runs only
    /// while time is left. The outbox is left to the app.
    pub async fn notifications(&self, within: Duration) -> Result<Notifications> {
        let deadline = tokio::time::Instant::now() + within;
        let circles = self.circles().await?;
        let (synced, follow_ups) = self.sync_rounds(circles, true, Some(deadline)).await?;
        if tokio::time::Instant::now() < deadline {
            self.drive(follow_ups).await?;
        }
        let mut items = Vec::new();
        let mut titles: HashMap<CircleId, Option<String>> = HashMap::new();
        let mut names: HashMap<CircleId, HashMap<DeviceId, String>> = HashMap::new();
        for circle in &synced.joined {
            let title = self.title(circle).await?;
            titles.insert(circle.clone(), title.clone());
            items.push(Notification {
                circle_id: circle.clone(),
                circle_title: title,
                sender: None,
                sender_name: None,
                kind: NotificationKind::Joined,
                preview: String::new(),
                seq: 0,
            });
        }
        let mut shown: Vec<(CircleId, Message)> = Vec::new();
        for (circle, messages) in synced.messages.into_iter().chain(synced.calendar) {
            shown.extend(messages.into_iter().map(|m| (circle.clone(), m)));
        }
        shown.sort_by(|(a, m), (b, n)| a.cmp(b).then(m.seq.cmp(&n.seq)));
        for (circle, message) in shown {
            let Some((kind, preview)) = what_it_is(&message.envelope.content) else {
                continue;
            };
            if !titles.contains_key(&circle) {
                titles.insert(circle.clone(), self.title(&circle).await?);
            }
            if !names.contains_key(&circle) {
                names.insert(circle.clone(), self.names(&circle).await?);
            }
            items.push(Notification {
                circle_title: titles.get(&circle).cloned().flatten(),
                sender: Some(message.sender),
                sender_name: names
                    .get(&circle)
                    .and_then(|n| n.get(&message.sender))
                    .cloned(),
                circle_id: circle,
                kind,
                preview,
                seq: message.seq,
            });
        }
        Ok(Notifications {
            items,
            complete: synced.complete,
        })
    }
}

/// A content's kind of notification and its preview; `None` for what is
/// not shown.
fn what_it_is(content: &Content) -> Option<(NotificationKind, String)> {
    Some(match content {
        Content::Text { body, .. } => (NotificationKind::Message, body.clone()),
        Content::Reply { body, .. } => (NotificationKind::Reply, body.clone()),
        Content::Reaction { emoji, .. } => (NotificationKind::Reaction, emoji.clone()),
        Content::SessionSeries { .. } | Content::SessionChange { .. } => {
            (NotificationKind::Schedule, String::new())
        }
        Content::Agreement { text, .. } => (NotificationKind::Agreement, text.clone()),
        Content::CheckInPrompt { text, .. } => (NotificationKind::CheckIn, text.clone()),
        _ => return None,
    })
}
