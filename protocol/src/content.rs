//! What travels inside MLS: the schema of application messages.
//!
//! Every plaintext is one JSON [`Envelope`]: a version and a `kind`-tagged
//! [`Content`]. Clients ignore kinds they do not know (they decode as
//! [`Content::Unknown`]), so newer clients can add kinds without breaking
//! older ones. The server never sees any of this.

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
    /// A kind this version does not know; ignored.
    #[serde(other)]
    Unknown,
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
