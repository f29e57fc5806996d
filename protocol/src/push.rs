//! Push: a device registers one target through which the server wakes it
//! when something is waiting and no socket of the device is live.
//!
//! A wake says nothing: every wake, on every occasion and for every device,
//! is the same constant-size, content-free message ([`WAKE_PAYLOAD`] for Web
//! Push; for APNs an alert whose text is the operator's one placeholder, with
//! `mutable-content` for the app's extension to replace, or a background
//! notification with no alert, as the server is configured; a data-only
//! message with one constant field for FCM). On waking, the app syncs.

use crate::Base64Bytes;
use serde::{Deserialize, Serialize};

/// What every Web Push wake carries once decrypted (RFC 8291): the same
/// bytes every time, so the encrypted record always has one length.
pub const WAKE_PAYLOAD: &[u8] =
    b"{\"hearth\":\"wake\",\"v\":1,\"pad\":\"................................\"}";

/// The one field of every FCM data message, and its value.
pub const FCM_WAKE_FIELD: (&str, &str) = ("hearth", "wake");

/// Length of a Web Push subscription's `p256dh` key: an uncompressed P-256
/// point.
pub const P256DH_LEN: usize = 65;

/// Length of a Web Push subscription's `auth` secret.
pub const AUTH_SECRET_LEN: usize = 16;

/// `PUT /v1/devices/current/push`: where the server wakes this device. A
/// device has at most one target; putting another replaces it (and revives
/// a target the server had marked dead).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PushTarget {
    /// A Web Push subscription (RFC 8030): browsers and UnifiedPush
    /// distributors alike. The fields are those of a `PushSubscription`'s
    /// JSON.
    WebPush {
        /// The push service's URL for this subscription: `https`, not a
        /// loopback, private or link-local address.
        endpoint: String,
        /// The subscription's P-256 public key, uncompressed (65 bytes),
        /// unpadded base64url.
        p256dh: Base64Bytes,
        /// The subscription's authentication secret (16 bytes), unpadded
        /// base64url.
        auth: Base64Bytes,
    },
    /// An Apple Push Notification service device token.
    Apns {
        /// The device token, hexadecimal.
        token: String,
        /// The app's bundle id (the `apns-topic`); the server's configured
        /// topic when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// Which APNs environment issued the token; the server's configured
        /// default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        environment: Option<ApnsEnvironment>,
    },
    /// A Firebase Cloud Messaging registration token.
    Fcm {
        /// The registration token.
        token: String,
    },
}

impl PushTarget {
    /// Which kind of target this is.
    pub fn kind(&self) -> PushKind {
        match self {
            Self::WebPush { .. } => PushKind::WebPush,
            Self::Apns { .. } => PushKind::Apns,
            Self::Fcm { .. } => PushKind::Fcm,
        }
    }
}

/// Endpoints and tokens identify a phone: never in logs.
impl std::fmt::Debug for PushTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTarget")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

/// The APNs environment a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApnsEnvironment {
    /// Apps from the App Store or TestFlight.
    Production,
    /// Development builds.
    Sandbox,
}

/// The kinds of push target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// Web Push (RFC 8030, 8291, 8292), including UnifiedPush.
    WebPush,
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging (HTTP v1).
    Fcm,
}

impl PushKind {
    /// The kind as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebPush => "web_push",
            Self::Apns => "apns",
            Self::Fcm => "fcm",
        }
    }
}

/// Why the server stopped using a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PushDeadReason {
    /// The push service says the subscription or token no longer exists
    /// (Web Push 404 or 410, APNs 410 `Unregistered`, FCM `UNREGISTERED`).
    Unregistered,
    /// The push service refuses the token itself (APNs `BadDeviceToken`).
    BadToken,
    /// A code this version of the protocol does not know.
    #[serde(other)]
    Unknown,
}

impl PushDeadReason {
    /// The reason as it appears on the wire (and in the database).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unregistered => "unregistered",
            Self::BadToken => "bad_token",
            Self::Unknown => "unknown",
        }
    }

    /// A reason from its wire name; a name this version does not know is
    /// `Unknown`.
    pub fn parse(text: &str) -> Self {
        match text {
            "unregistered" => Self::Unregistered,
            "bad_token" => Self::BadToken,
            _ => Self::Unknown,
        }
    }
}

/// `GET /v1/push/services`: which transports this server sends through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushServices {
    /// With Web Push: the VAPID public key to subscribe with
    /// (`applicationServerKey`), an uncompressed P-256 point, unpadded
    /// base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_push_vapid_key: Option<String>,
    /// Whether APNs targets are accepted.
    pub apns: bool,
    /// Whether FCM targets are accepted.
    pub fcm: bool,
}

/// `GET /v1/devices/current/push`: the device's target and whether it works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PushStatus {
    /// The kind of target registered.
    pub kind: PushKind,
    /// Unix seconds the target was registered.
    pub registered_at: i64,
    /// Whether the server still wakes the device through it.
    pub working: bool,
    /// Unix seconds of the last wake the push service accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_wake_at: Option<i64>,
    /// When the target stopped working (`working` is false): unix seconds.
    /// Register a fresh target to be woken again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_since: Option<i64>,
    /// Why the target stopped working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_reason: Option<PushDeadReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_travel_tagged_by_kind() {
        let json = r#"{"kind":"apns","token":"ab01","environment":"sandbox"}"#;
        let target: PushTarget = serde_json::from_str(json).unwrap();
        assert_eq!(target.kind(), PushKind::Apns);
        assert_eq!(serde_json::to_string(&target).unwrap(), json);
        let debug = format!("{target:?}");
        assert!(
            !debug.contains("ab01"),
            "a token must not reach a log: {debug}"
        );
        assert!(
            serde_json::from_str::<PushTarget>(r#"{"kind":"fcm","token":"t","extra":1}"#).is_err()
        );
    }

    #[test]
    fn the_wake_is_one_constant() {
        assert!(serde_json::from_slice::<serde_json::Value>(WAKE_PAYLOAD).is_ok());
        assert_eq!(WAKE_PAYLOAD.len(), 64);
    }
}
