//! What travels inside MLS: the schema of application messages.
//!
//! Every plaintext is one JSON [`Envelope`]: a version and a `kind`-tagged
//! [`Content`]. Clients ignore kinds they do not know (they decode as
//! [`Content::Unknown`]), so newer clients can add kinds without breaking
//! older ones. The server never sees any of this.

use crate::DeviceId;
use crate::schedule::{RsvpAnswer, Series, SeriesChange, SnapshotItem};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The schema version this crate writes.
pub const CONTENT_VERSION: u16 = 1;

/// One application message's plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The schema version it was written with.
    pub v: u16,
    /// What it says.
    #[serde(flatten)]
    pub content: Content,
}

/// The kinds of content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// A message.
    Text {
        /// Its id, for replies and reactions.
        id: Uuid,
        /// The text.
        body: String,
    },
    /// A reply to an earlier message.
    Reply {
        /// Its id.
        id: Uuid,
        /// The message replied to.
        in_reply_to: Uuid,
        /// The text.
        body: String,
    },
    /// A reaction to an earlier message.
    Reaction {
        /// Its id.
        id: Uuid,
        /// The message reacted to.
        to: Uuid,
        /// The reaction (an emoji).
        emoji: String,
    },
    /// The sender's name in this circle. Sent on joining, and again when
    /// others join (they cannot read what came before them).
    Profile {
        /// What others see instead of a device id.
        display_name: String,
    },
    /// The circle's title, sent by a facilitator on creation and whenever
    /// members join.
    CircleProfile {
        /// The circle's name.
        title: String,
    },
    /// A session series (facilitators; see [`crate::schedule`]).
    SessionSeries {
        /// This item's id.
        id: Uuid,
        /// The series' id, which later changes name.
        series_id: Uuid,
        /// When it meets.
        series: Series,
    },
    /// A change to a series (facilitators).
    SessionChange {
        /// This item's id.
        id: Uuid,
        /// The series changed.
        series_id: Uuid,
        /// What changes.
        change: SeriesChange,
    },
    /// The sender's answer for one occurrence.
    Rsvp {
        /// This item's id.
        id: Uuid,
        /// The series.
        series_id: Uuid,
        /// The occurrence, by its original date.
        occurrence: Date,
        /// Coming or passing.
        answer: RsvpAnswer,
        /// An optional note; passing never needs one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Who was present at an occurrence (facilitators).
    Attendance {
        /// This item's id.
        id: Uuid,
        /// The series.
        series_id: Uuid,
        /// The occurrence, by its original date.
        occurrence: Date,
        /// The devices present.
        present: Vec<DeviceId>,
        /// The members (besides facilitators) expected at it: those in the
        /// circle when it was recorded, so a member who joined later is not
        /// counted as missing it. Absent in items of earlier clients; readers
        /// then take the circle's members.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expected: Vec<DeviceId>,
    },
    /// The circle's agreement, its norms (facilitators). Its version is the
    /// lowercase hex SHA-256 of the text.
    Agreement {
        /// This item's id.
        id: Uuid,
        /// The text.
        text: String,
    },
    /// The sender accepts a version of the agreement.
    AgreementAccepted {
        /// This item's id.
        id: Uuid,
        /// The version accepted.
        version: String,
    },
    /// A check-in prompt between sessions (facilitators).
    CheckInPrompt {
        /// This item's id, which replies name.
        id: Uuid,
        /// The prompt.
        text: String,
    },
    /// The sender's reply to a check-in prompt.
    CheckInReply {
        /// This item's id.
        id: Uuid,
        /// The prompt replied to.
        prompt: Uuid,
        /// A mood, 1 (low) to 5 (good).
        mood: u8,
        /// An optional line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<String>,
    },
    /// The calendar as a facilitator's client knows it, for members who join
    /// late. Only ever in the circle's snapshot slot, never in the log.
    ScheduleSnapshot {
        /// Every calendar item, in log order.
        items: Vec<SnapshotItem>,
        /// Spaces that round the size up, so the size says little.
        #[serde(default)]
        padding: String,
    },
    /// A kind this version does not know; ignored.
    #[serde(other)]
    Unknown,
}

impl Content {
    /// The id of a calendar item (series, change, RSVP, attendance,
    /// agreement, acceptance, check-in); `None` for conversation and profiles.
    pub fn calendar_id(&self) -> Option<Uuid> {
        match self {
            Self::SessionSeries { id, .. }
            | Self::SessionChange { id, .. }
            | Self::Rsvp { id, .. }
            | Self::Attendance { id, .. }
            | Self::Agreement { id, .. }
            | Self::AgreementAccepted { id, .. }
            | Self::CheckInPrompt { id, .. }
            | Self::CheckInReply { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Whether only a facilitator may send it (clients ignore it from
    /// anyone else).
    pub fn facilitators_only(&self) -> bool {
        matches!(
            self,
            Self::SessionSeries { .. }
                | Self::SessionChange { .. }
                | Self::Attendance { .. }
                | Self::Agreement { .. }
                | Self::CheckInPrompt { .. }
                | Self::ScheduleSnapshot { .. }
        )
    }
}

impl Envelope {
    /// Wraps content in the current version.
    pub fn new(content: Content) -> Self {
        Self {
            v: CONTENT_VERSION,
            content,
        }
    }

    /// The bytes to encrypt.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads decrypted bytes; anything unreadable or unknown is `Unknown`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        serde_json::from_slice(bytes).unwrap_or(Self {
            v: 0,
            content: Content::Unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_kinds_round_trip_and_unknown_kinds_are_ignored() {
        let text = Envelope::new(Content::Text {
            id: Uuid::nil(),
            body: "see you thursday".into(),
        });
        assert_eq!(Envelope::from_bytes(&text.to_bytes()), text);
        let later = br#"{"v":7,"kind":"poll","question":"when?"}"#;
        assert_eq!(Envelope::from_bytes(later).content, Content::Unknown);
        assert_eq!(Envelope::from_bytes(b"not json").content, Content::Unknown);
    }
}
