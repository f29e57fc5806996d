//! The records apps see, and conversions from and to the SDK's types. Ids
//! travel as text: circles in unpadded base64url, devices and requests as
//! hyphenated UUIDs.

use crate::HearthError;
use hearth_client::Event;
use hearth_protocol::content::Content;
use hearth_protocol::push::{ApnsEnvironment, PushTarget};
use hearth_protocol::{Base64Bytes, CircleId, DeviceId};
use std::collections::HashMap;

pub(crate) fn circle_id(text: &str) -> Result<CircleId, HearthError> {
    text.parse().map_err(|_| HearthError::InvalidInput {
        detail: "not a circle id".into(),
    })
}

pub(crate) fn device_id(text: &str) -> Result<DeviceId, HearthError> {
    text.parse().map_err(|_| HearthError::InvalidInput {
        detail: "not a device id".into(),
    })
}

pub(crate) fn uuid(text: &str) -> Result<uuid::Uuid, HearthError> {
    uuid::Uuid::try_parse(text).map_err(|_| HearthError::InvalidInput {
        detail: "not an id".into(),
    })
}

pub(crate) fn event_circle(event: &Event) -> Option<&CircleId> {
    match event {
        Event::Message { circle_id, .. } => Some(circle_id),
        _ => None,
    }
}

/// A circle this device is in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Circle {
    /// Its id.
    pub id: String,
    /// Its title, once a facilitator set one.
    pub title: Option<String>,
}

/// A circle this device was in and no longer is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PastCircle {
    /// Its id.
    pub id: String,
    /// Its title, if one was known.
    pub title: Option<String>,
    /// Removed by a facilitator (or revoked), rather than left.
    pub removed: bool,
}

/// A member of a circle, by the MLS group.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    /// The device.
    pub device_id: String,
    /// The name the member gave, if any reached this device.
    pub name: Option<String>,
}

/// A pending join request, as a facilitator sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct JoinRequest {
    /// Approve or decline by this id.
    pub id: String,
    /// The introduction note (none if absent or unreadable).
    pub note: Option<String>,
    /// How many devices would join (one person's phone and laptop).
    pub devices: u32,
}

impl From<hearth_client::JoinRequestView> for JoinRequest {
    fn from(view: hearth_client::JoinRequestView) -> Self {
        Self {
            id: view.id.to_string(),
            note: view.note,
            devices: u32::try_from(view.device_ids.len()).unwrap_or(u32::MAX),
        }
    }
}

/// A message of a circle's history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Message {
    /// Its number in the circle: the order everyone sees.
    pub seq: u64,
    /// Who sent it.
    pub sender_device_id: String,
    /// The sender's name, if it reached this device.
    pub sender_name: Option<String>,
    /// `text`, `reply`, `reaction`, or another kind of content.
    pub kind: String,
    /// The text of a message or reply, the emoji of a reaction.
    pub text: Option<String>,
    /// Unix seconds the server received it.
    pub received_at: i64,
}

impl Message {
    pub(crate) fn from_sdk(
        message: &hearth_client::Message,
        names: &HashMap<DeviceId, String>,
    ) -> Self {
        let (kind, text) = match &message.envelope.content {
            Content::Text { body, .. } => ("text".to_owned(), Some(body.clone())),
            Content::Reply { body, .. } => ("reply".to_owned(), Some(body.clone())),
            Content::Reaction { emoji, .. } => ("reaction".to_owned(), Some(emoji.clone())),
            other => (content_kind(other), None),
        };
        Self {
            seq: message.seq,
            sender_device_id: message.sender.to_string(),
            sender_name: names.get(&message.sender).cloned(),
            kind,
            text,
            received_at: message.received_at,
        }
    }
}

/// The content's kind as it travels (`session_series`, `rsvp`, ...).
fn content_kind(content: &Content) -> String {
    serde_json::to_value(content)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A live event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LiveEvent {
    /// The stream is (again) connected and caught up.
    Connected,
    /// The connection dropped; it reconnects by itself.
    Disconnected,
    /// A message arrived.
    Message {
        /// The circle.
        circle_id: String,
        /// The message.
        message: Message,
    },
    /// This device joined a circle.
    Joined {
        /// The circle.
        circle_id: String,
    },
    /// This device was removed from a circle (or revoked); its history
    /// stays readable.
    Removed {
        /// The circle.
        circle_id: String,
    },
    /// This device's state broke and it rejoined by external commit:
    /// messages sent in between cannot be read here. Tell the user.
    Rejoined {
        /// The circle.
        circle_id: String,
    },
    /// A message could not be decrypted on this device and was passed over.
    Undecryptable {
        /// The circle.
        circle_id: String,
        /// Where it stood in the log.
        seq: u64,
    },
    /// A Welcome could not be used; with `repaired` the device joined by
    /// external commit instead, otherwise it is not in the circle.
    WelcomeUnusable {
        /// The circle.
        circle_id: String,
        /// In the circle after all.
        repaired: bool,
    },
    /// This device brought other devices of its account into the circle.
    DevicesAdded {
        /// The circle.
        circle_id: String,
        /// The devices added.
        device_ids: Vec<String>,
    },
    /// The server was restored from a backup: messages sent shortly before
    /// may be gone from it. Tell the user once.
    Restored,
    /// Someone asks to join (facilitators).
    JoinRequest {
        /// The circle.
        circle_id: String,
        /// The request.
        request_id: String,
    },
}

impl LiveEvent {
    pub(crate) fn from_sdk(event: Event, names: &HashMap<DeviceId, String>) -> Self {
        match event {
            Event::Connected => Self::Connected,
            Event::Disconnected => Self::Disconnected,
            Event::Message { circle_id, message } => Self::Message {
                circle_id: circle_id.to_string(),
                message: Message::from_sdk(&message, names),
            },
            Event::Joined { circle_id } => Self::Joined {
                circle_id: circle_id.to_string(),
            },
            Event::Removed { circle_id } => Self::Removed {
                circle_id: circle_id.to_string(),
            },
            Event::Restored => Self::Restored,
            Event::Rejoined { circle_id } => Self::Rejoined {
                circle_id: circle_id.to_string(),
            },
            Event::Undecryptable { circle_id, seq } => Self::Undecryptable {
                circle_id: circle_id.to_string(),
                seq,
            },
            Event::WelcomeUnusable {
                circle_id,
                repaired,
            } => Self::WelcomeUnusable {
                circle_id: circle_id.to_string(),
                repaired,
            },
            Event::DevicesAdded { circle_id, devices } => Self::DevicesAdded {
                circle_id: circle_id.to_string(),
                device_ids: devices.iter().map(ToString::to_string).collect(),
            },
            Event::JoinRequest {
                circle_id,
                request_id,
            } => Self::JoinRequest {
                circle_id: circle_id.to_string(),
                request_id: request_id.to_string(),
            },
        }
    }
}

/// Where the platform wakes this device.
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PushRegistration {
    /// A Web Push subscription (UnifiedPush distributors, browsers): the
    /// endpoint and the subscription's keys, unpadded base64url.
    WebPush {
        /// The endpoint URL.
        endpoint: String,
        /// The P-256 public key.
        p256dh: String,
        /// The authentication secret.
        auth: String,
    },
    /// An APNs device token (hex), with the app's bundle id and whether it
    /// is a development token, when they differ from the server's defaults.
    Apns {
        /// The device token.
        token: String,
        /// The bundle id.
        topic: Option<String>,
        /// A development (sandbox) token.
        sandbox: Option<bool>,
    },
    /// An FCM registration token.
    Fcm {
        /// The token.
        token: String,
    },
}

/// Tokens and endpoints identify a phone: never in logs.
impl std::fmt::Debug for PushRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushRegistration(..)")
    }
}

impl PushRegistration {
    pub(crate) fn into_target(self) -> Result<PushTarget, HearthError> {
        let key = |text: &str, what: &str| {
            Base64Bytes::decode(text)
                .map(Base64Bytes::from)
                .ok_or_else(|| HearthError::InvalidInput {
                    detail: format!("{what} is not unpadded base64url"),
                })
        };
        Ok(match self {
            Self::WebPush {
                endpoint,
                p256dh,
                auth,
            } => PushTarget::WebPush {
                p256dh: key(&p256dh, "p256dh")?,
                auth: key(&auth, "auth")?,
                endpoint,
            },
            Self::Apns {
                token,
                topic,
                sandbox,
            } => PushTarget::Apns {
                token,
                topic,
                environment: sandbox.map(|s| {
                    if s {
                        ApnsEnvironment::Sandbox
                    } else {
                        ApnsEnvironment::Production
                    }
                }),
            },
            Self::Fcm { token } => PushTarget::Fcm { token },
        })
    }
}

/// Whether this device's push target still works.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushHealth {
    /// `web_push`, `apns` or `fcm`.
    pub kind: String,
    /// False once the push service said the target is gone: register a
    /// fresh one.
    pub working: bool,
    /// Unix seconds of the last wake the push service accepted.
    pub last_wake_at: Option<i64>,
    /// Since when it does not work.
    pub dead_since: Option<i64>,
}

impl From<hearth_protocol::push::PushStatus> for PushHealth {
    fn from(status: hearth_protocol::push::PushStatus) -> Self {
        Self {
            kind: status.kind.as_str().to_owned(),
            working: status.working,
            last_wake_at: status.last_wake_at,
            dead_since: status.dead_since,
        }
    }
}

/// One thing a woken phone shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ShownNotification {
    /// The circle.
    pub circle_id: String,
    /// Its title, when known.
    pub circle_title: Option<String>,
    /// The sender's name, when known.
    pub sender_name: Option<String>,
    /// `message`, `reply`, `reaction`, `schedule`, `agreement`, `check_in`
    /// or `joined`.
    pub kind: String,
    /// What it says (empty for schedule changes and joins).
    pub preview: String,
    /// Its sequence number in the circle (0 for a join).
    pub seq: u64,
}

impl From<hearth_client::Notification> for ShownNotification {
    fn from(shown: hearth_client::Notification) -> Self {
        use hearth_client::NotificationKind as Kind;
        Self {
            circle_id: shown.circle_id.to_string(),
            circle_title: shown.circle_title,
            sender_name: shown.sender_name,
            kind: match shown.kind {
                Kind::Message => "message",
                Kind::Reply => "reply",
                Kind::Reaction => "reaction",
                Kind::Schedule => "schedule",
                Kind::Agreement => "agreement",
                Kind::CheckIn => "check_in",
                Kind::Joined => "joined",
            }
            .to_owned(),
            preview: shown.preview,
            seq: shown.seq,
        }
    }
}

/// A message on its way out.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutgoingMessage {
    /// Its id (for retrying or discarding it).
    pub message_id: String,
    /// The circle.
    pub circle_id: String,
    /// Its text (empty for other kinds).
    pub text: String,
    /// Why it failed; none while it is pending.
    pub failed: Option<String>,
    /// Unix seconds the user sent it.
    pub created_at: i64,
}

impl From<hearth_client::Outgoing> for OutgoingMessage {
    fn from(message: hearth_client::Outgoing) -> Self {
        let text = match message.envelope.content {
            hearth_protocol::content::Content::Text { body, .. }
            | hearth_protocol::content::Content::Reply { body, .. } => body,
            _ => String::new(),
        };
        Self {
            message_id: message.message_id.to_string(),
            circle_id: message.circle_id.to_string(),
            text,
            failed: match message.state {
                hearth_client::OutgoingState::Pending => None,
                hearth_client::OutgoingState::Failed(why) => Some(why),
            },
            created_at: message.created_at,
        }
    }
}

/// What a wake brought.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Woken {
    /// Circles joined.
    pub joined: Vec<String>,
    /// Circles with new messages.
    pub circles_with_news: Vec<String>,
    /// How many new messages in all.
    pub new_messages: u64,
}

impl From<hearth_client::Woken> for Woken {
    fn from(woken: hearth_client::Woken) -> Self {
        Self {
            joined: woken.joined.iter().map(ToString::to_string).collect(),
            circles_with_news: woken
                .new_messages
                .iter()
                .map(|(c, _)| c.to_string())
                .collect(),
            new_messages: woken
                .new_messages
                .iter()
                .map(|(_, n)| u64::try_from(*n).unwrap_or(u64::MAX))
                .sum(),
        }
    }
}

/// An invite a facilitator minted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Invite {
    /// For revoking it.
    pub id: String,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many people may redeem it.
    pub max_uses: u32,
    /// How many did.
    pub uses: u32,
}

impl From<hearth_protocol::circles::InviteInfo> for Invite {
    fn from(info: hearth_protocol::circles::InviteInfo) -> Self {
        Self {
            id: info.invite_id.to_string(),
            expires_at: info.expires_at,
            max_uses: info.max_uses,
            uses: info.uses,
        }
    }
}

/// One of this account's devices.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Device {
    /// Its id.
    pub device_id: String,
    /// Whether it is this device.
    pub current: bool,
    /// Unix seconds it registered.
    pub created_at: i64,
}
