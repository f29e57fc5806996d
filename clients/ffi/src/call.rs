//! Video calls through the bindings: the room and token from the server,
//! the media keys from the circle's MLS group. Two ways to use them:
//! - an app with its own frame pipeline hands every outgoing frame to
//!   `encrypt` and every incoming one to `decrypt` (SFrame, RFC 9605);
//! - an app on LiveKit's client SDK turns on LiveKit's end-to-end
//!   encryption and feeds its key provider `livekit_keys(identity)` for
//!   each participant (or `livekit_shared_keys()` for one shared key), again
//!   whenever the epoch changes (`epoch()` moves).
//!
//! The keys follow the circle's epoch by themselves.

use crate::{HearthClient, HearthError};
use std::sync::Arc;

/// A joined call: where, with what token, and the frame keys.
#[derive(uniffi::Object)]
pub struct MediaCall {
    call: hearth_client::Call,
}

/// Key material for LiveKit's own frame encryption, for one epoch.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct LiveKitKey {
    /// Hand it to LiveKit's key provider as a string key (PBKDF2, which every
    /// LiveKit SDK supports).
    pub passphrase: String,
    /// The key index to set it at (and to send with, for this device's own).
    pub key_index: u8,
    /// The circle's epoch it belongs to.
    pub epoch: u64,
}

/// Shows nothing of the passphrase.
impl std::fmt::Debug for LiveKitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LiveKitKey {{ key_index: {}, epoch: {}, .. }}",
            self.key_index, self.epoch
        )
    }
}

fn livekit(keys: Vec<hearth_client::LiveKitKey>) -> Vec<LiveKitKey> {
    keys.into_iter()
        .map(|k| LiveKitKey {
            passphrase: k.passphrase,
            key_index: k.key_index,
            epoch: k.epoch,
        })
        .collect()
}

impl std::fmt::Debug for MediaCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaCall(..)")
    }
}

#[uniffi::export]
impl MediaCall {
    /// The SFU's URL.
    pub fn url(&self) -> String {
        self.call.url.clone()
    }

    /// The room (opaque to the SFU).
    pub fn room(&self) -> String {
        self.call.room.clone()
    }

    /// The token to join the room with.
    pub fn token(&self) -> String {
        self.call.token.clone()
    }

    /// This device's identity in the room (opaque to the SFU).
    pub fn identity(&self) -> String {
        self.call.identity.clone()
    }

    /// The circle's epoch the keys belong to now.
    pub fn epoch(&self) -> Result<u64, HearthError> {
        Ok(self.call.keys.epoch()?)
    }

    /// LiveKit keys of the participant with this identity (this device's
    /// own, or another's as the room shows it): the current epoch's first,
    /// then the previous one's during the grace period.
    pub fn livekit_keys(&self, identity: String) -> Result<Vec<LiveKitKey>, HearthError> {
        Ok(livekit(self.call.keys.livekit_keys(&identity)?))
    }

    /// The room's one shared LiveKit key (LiveKit's
    /// `ExternalE2EEKeyProvider`): current, then previous during the grace
    /// period.
    pub fn livekit_shared_keys(&self) -> Result<Vec<LiveKitKey>, HearthError> {
        Ok(livekit(self.call.keys.livekit_shared_keys()?))
    }

    /// Unix seconds when the token expires.
    pub fn expires_at(&self) -> i64 {
        self.call.expires_at
    }

    /// Encrypts one media frame with this member's current key.
    pub fn encrypt(&self, frame: Vec<u8>) -> Result<Vec<u8>, HearthError> {
        Ok(self.call.keys.encrypt(&frame)?)
    }

    /// Decrypts one media frame from another member.
    pub fn decrypt(&self, frame: Vec<u8>) -> Result<Vec<u8>, HearthError> {
        Ok(self.call.keys.decrypt(&frame)?)
    }
}

#[uniffi::export]
impl HearthClient {
    /// Joins the circle's video call: catches up, asks the server for the
    /// room and a token, and opens the media keys.
    pub async fn join_call(&self, circle_id: String) -> Result<Arc<MediaCall>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let call = client.join_call(&circle).await?;
            Ok(Arc::new(MediaCall { call }))
        })
        .await
    }
}
