//! `GET /v1/stream`: live delivery over a WebSocket, as JSON text frames.
//!
//! The client opens the socket with its access token in the `Authorization`
//! header and sends [`ClientFrame::Resume`] first, naming where it stands in
//! each circle; circles it does not name resume from what the device last
//! acknowledged. The server then sends every entry after those cursors, in
//! order, and keeps sending new ones as they arrive: no gap, no duplicate.
//! A client that reconnects resumes from the last `seq` it saw.

use crate::circles::{Accepted, JoinRequest, LogEntry, PendingWelcome, SendMessage};
use crate::{CircleId, ErrorBody};
use serde::{Deserialize, Serialize};

/// Where a client stands in one circle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cursor {
    /// The circle.
    pub circle_id: CircleId,
    /// The last sequence number the client has.
    pub after: u64,
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start (or restart) delivery from these cursors. Must come first.
    Resume {
        /// Per-circle positions; other circles resume from the device's
        /// acknowledged position.
        #[serde(default)]
        cursors: Vec<Cursor>,
    },
    /// Send an application message, with the same rules as
    /// `POST /v1/circles/{circle_id}/messages`.
    Send {
        /// Echoed in the answer.
        request_id: u64,
        /// The circle.
        circle_id: CircleId,
        /// The message.
        message: SendMessage,
    },
    /// Acknowledge the circle's log up to `seq`.
    Ack {
        /// The circle.
        circle_id: CircleId,
        /// The highest sequence number processed.
        seq: u64,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The resume was applied: these are the circles being delivered.
    Ready {
        /// The device's circles.
        circles: Vec<CircleId>,
        /// The server's log generation (see `SyncResponse::generation`).
        #[serde(default)]
        generation: String,
    },
    /// The next entry of a circle's log.
    Entry {
        /// The circle.
        circle_id: CircleId,
        /// The entry.
        entry: LogEntry,
    },
    /// A Welcome for this device; its circle is delivered from now on.
    Welcome {
        /// The Welcome (acknowledge it over HTTP).
        welcome: PendingWelcome,
    },
    /// A new join request, sent to the circle's facilitators.
    JoinRequest {
        /// The circle.
        circle_id: CircleId,
        /// The request.
        join_request: JoinRequest,
    },
    /// The device is no longer on the circle's roster; nothing more comes.
    Removed {
        /// The circle.
        circle_id: CircleId,
    },
    /// Another device of this device's account can now be added to circles
    /// (a newly linked device published its first KeyPackages): this device
    /// may bring it into its circles.
    DeviceLinked,
    /// A `send` was accepted.
    Sent {
        /// The request's id.
        request_id: u64,
        /// Where it landed.
        accepted: Accepted,
        /// True when this repeated an earlier identical send.
        repeated: bool,
    },
    /// A frame was refused.
    Error {
        /// The refused `send`'s id, when it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<u64>,
        /// Why, as an HTTP answer would say it.
        error: ErrorBody,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_frame_with_a_key_twice_is_not_a_frame() {
        let circle = "AAAAAAAAAAAAAAAAAAAAAA";
        let ack = format!(r#"{{"type":"ack","circle_id":"{circle}","seq":1}}"#);
        assert!(serde_json::from_str::<ClientFrame>(&ack).is_ok());
        for twice in [
            format!(r#"{{"type":"ack","circle_id":"{circle}","seq":1,"seq":2}}"#),
            format!(r#"{{"type":"ack","type":"resume","circle_id":"{circle}","seq":1}}"#),
            format!(
                r#"{{"type":"send","request_id":1,"circle_id":"{circle}","message":{{"message_id":"6f9619ff-8b86-d011-b42d-00cf4fc964ff","epoch":1,"ciphertext":"AA==","ciphertext":"AQ=="}}}}"#
            ),
        ] {
            assert!(
                serde_json::from_str::<ClientFrame>(&twice).is_err(),
                "{twice}"
            );
        }
    }
}
