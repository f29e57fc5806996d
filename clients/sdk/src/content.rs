//! What each kind of encrypted content does when it arrives (or when this
//! device sends it): the one place a new kind of content is handled.
//!
//! Conversation (text, replies, reactions) goes into the history. A member's
//! profile and the circle's title are kept apart from it, as the names and
//! title the client shows. Calendar items (sessions, RSVPs, attendance, the
//! agreement, check-ins) are kept as items the calendar is folded from
//! (`calendar.rs`), where the rule about who may send what is applied.
//! Unknown kinds are kept in the history as `Unknown`, so nothing a newer
//! client sends is lost from the order.

use crate::Result;
use crate::messages::Message;
use crate::store::{CalendarItem, Store};
use hearth_protocol::CircleId;
use hearth_protocol::content::Content;

/// Applies a message's content to the store. Returns the message when it
/// belongs in the history (and was stored there).
pub(crate) fn apply(store: &Store, circle: &CircleId, message: Message) -> Result<Option<Message>> {
    match &message.envelope.content {
        Content::Profile { display_name } => {
            store.set_name(circle, message.sender, display_name)?;
            Ok(None)
        }
        Content::CircleProfile { title } => {
            store.set_title(circle, title)?;
            Ok(None)
        }
        Content::Text { .. }
        | Content::Reply { .. }
        | Content::Reaction { .. }
        | Content::Unknown => {
            store.add_history(circle, &message)?;
            Ok(Some(message))
        }
        Content::SessionSeries { .. }
        | Content::SessionChange { .. }
        | Content::Rsvp { .. }
        | Content::Attendance { .. }
        | Content::Agreement { .. }
        | Content::AgreementAccepted { .. }
        | Content::CheckInPrompt { .. }
        | Content::CheckInReply { .. } => {
            let item = CalendarItem {
                seq: message.seq,
                sender: message.sender,
                content: message.envelope.content.clone(),
            };
            store.add_calendar_item(circle, &item)?;
            Ok(None)
        }
        // Snapshots travel in their own slot, never in the log.
        Content::ScheduleSnapshot { .. } => Ok(None),
    }
}
