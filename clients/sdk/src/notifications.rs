//! What a phone shows when a push wakes it: the one call a Notification
//! Service Extension (iOS) or a push worker (Android) makes. One sync for
//! every circle, Welcomes accepted, everything decrypted and stored, within
//! the caller's time budget; then what to show, item by item, with the
//! circle's title and the sender's name as this device knows them.

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
    ///
    /// What to show is read from the store, not from what this call
    /// decrypted: everything stored that the app has not been handed yet —
    /// by this call, an earlier one, a sync or the live stream, in this
    /// process or another on the same directory (the app and its extension).
    /// So an item is shown at most once across them, including one the other
    /// process decrypted a moment ago. Each step runs under the directory's
    /// lease; if the other process holds it for longer than the busy wait
    /// (see [`Client::set_busy_wait`]), this answers [`ClientError::Busy`]
    /// and nothing is marked shown.
    ///
    /// [`ClientError::Busy`]: crate::ClientError::Busy
    pub async fn notifications(&self, within: Duration) -> Result<Notifications> {
        let deadline = tokio::time::Instant::now() + within;
        let circles = self.circles().await?;
        let (synced, follow_ups) = self.sync_rounds(circles, true, Some(deadline)).await?;
        if tokio::time::Instant::now() < deadline {
            self.drive(follow_ups).await?;
        }
        let joined = synced.joined.clone();
        let mut items = self
            .with(move |s| {
                let me = s
                    .store
                    .device()?
                    .ok_or(crate::ClientError::NotRegistered)?
                    .device_id;
                let mut items = Vec::new();
                for circle in &joined {
                    items.push(Notification {
                        circle_id: circle.clone(),
                        circle_title: s.store.title(circle)?,
                        sender: None,
                        sender_name: None,
                        kind: NotificationKind::Joined,
                        preview: String::new(),
                        seq: 0,
                    });
                }
                for (circle, cursor) in s.store.circles()? {
                    let shown = s.store.shown(&circle)?;
                    // Nothing new: nothing to read, nothing written.
                    if shown < cursor {
                        items.extend(unshown(s.store, &circle, shown, cursor, me)?);
                        s.store.set_shown(&circle, cursor)?;
                    }
                }
                Ok(items)
            })
            .await?;
        items.sort_by(|a, b| {
            let joined = |n: &Notification| n.kind != NotificationKind::Joined;
            joined(a)
                .cmp(&joined(b))
                .then(a.circle_id.cmp(&b.circle_id))
                .then(a.seq.cmp(&b.seq))
        });
        Ok(Notifications {
            items,
            complete: synced.complete,
        })
    }
}

/// What the store holds of a circle after `shown` (what the app was
/// handed) up to `cursor`, as notifications (this device's own messages are
/// not among them).
fn unshown(
    store: &crate::store::Store,
    circle: &CircleId,
    shown: u64,
    cursor: u64,
    me: DeviceId,
) -> Result<Vec<Notification>> {
    let mut found: Vec<(u64, DeviceId, Content)> = store
        .history_between(circle, shown, cursor)?
        .into_iter()
        .map(|m| (m.seq, m.sender, m.envelope.content))
        .collect();
    found.extend(
        store
            .calendar_items_between(circle, shown, cursor)?
            .into_iter()
            .filter(|i| crate::sync::notable(&i.content))
            .map(|i| (i.seq, i.sender, i.content)),
    );
    found.retain(|(_, sender, _)| *sender != me);
    found.sort_by_key(|(seq, ..)| *seq);
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let title = store.title(circle)?;
    let names: HashMap<DeviceId, String> = store.names(circle)?.into_iter().collect();
    Ok(found
        .into_iter()
        .filter_map(|(seq, sender, content)| {
            let (kind, preview) = what_it_is(&content)?;
            Some(Notification {
                circle_id: circle.clone(),
                circle_title: title.clone(),
                sender: Some(sender),
                sender_name: names.get(&sender).cloned(),
                kind,
                preview,
                seq,
            })
        })
        .collect())
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
