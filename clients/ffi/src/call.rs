//! Video calls through the bindings: the room and token from the server,
//! the media keys from the circle's MLS group (SFrame). The app hands every
//! outgoing frame to `encrypt` and every incoming one to `decrypt`; the
//! keys follow the circle's epoch by themselves.

use crate::convert::circle_id;
use crate::{HearthClient, HearthError, run};
use std::sync::Arc;

/// A joined call: where, with what token, and the frame keys.
#[derive(uniffi::Object)]
pub struct MediaCall {
    call: hearth_client::Call,
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
        let client = self.inner.clone();
        run(async move {
            let circle = self::circle_id(&circle_id)?;
            let call = client.join_call(&circle).await?;
            Ok(Arc::new(MediaCall { call }))
        })
        .await
    }
}
