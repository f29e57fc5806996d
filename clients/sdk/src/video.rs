//! Joining a circle's video call: the room and token from the server, the
//! media keys from the circle's MLS group (`call.rs`).

use crate::call::CallKeys;
use crate::{Client, Result, load};
use hearth_protocol::CircleId;
use openmls::prelude::OpenMlsProvider as _;

/// Everything an app needs to join the circle's call: where, with what
/// token, and the keys to encrypt and decrypt frames with.
#[derive(Clone)]
pub struct Call {
    /// The SFU's URL.
    pub url: String,
    /// The room (opaque to the SFU).
    pub room: String,
    /// This device's identity in the room (opaque to the SFU).
    pub identity: String,
    /// The access token to join with.
    pub token: String,
    /// Unix seconds when the token expires.
    pub expires_at: i64,
    /// The media keys, following the circle's epoch.
    pub keys: CallKeys,
}

/// Shows nothing of the token or the keys.
impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Call {{ expires_at: {}, .. }}", self.expires_at)
    }
}

impl Client {
    /// The circle's media keys for this device, kept at the circle's epoch
    /// as this client merges commits.
    pub async fn call_keys(&self, circle: &CircleId) -> Result<CallKeys> {
        let circle = circle.clone();
        self.with(move |s| {
            let group = load(s, &circle)?;
            s.calls.open(circle.as_bytes(), &group, s.provider.crypto())
        })
        .await
    }

    /// Joins the circle's video call: catches up (so the keys are the
    /// circle's current ones), asks the server for the room and a token,
    /// and opens the media keys.
    pub async fn join_call(&self, circle: &CircleId) -> Result<Call> {
        self.sync(circle).await?;
        let access = self.authorized().await?.call(circle).await?;
        Ok(Call {
            url: access.url,
            room: access.room,
            identity: access.identity,
            token: access.token,
            expires_at: access.expires_at,
            keys: self.call_keys(circle).await?,
        })
    }
}
