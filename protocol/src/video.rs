//! Video calls: the server lets a circle's devices into the circle's room on
//! a WebRTC SFU (LiveKit), and the media keys come from the circle's MLS
//! group (SFrame, RFC 9605), so the SFU relays frames it cannot decrypt.

use serde::{Deserialize, Serialize};

/// `POST /v1/circles/{circle_id}/call`: what a device needs to join the
/// circle's room.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallAccess {
    /// The SFU's URL (`wss://...`).
    pub url: String,
    /// The room: an opaque name the server derives from the circle, the same
    /// for every member and meaningless to the SFU.
    pub room: String,
    /// This device's identity in the room: opaque, different in every
    /// circle.
    pub identity: String,
    /// A LiveKit access token (a JWT) for this room only: join, publish and
    /// subscribe.
    pub token: String,
    /// Unix seconds when the token expires (join before then).
    pub expires_at: i64,
}

impl std::fmt::Debug for CallAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallAccess")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
