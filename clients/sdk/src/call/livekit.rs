//! Key material for LiveKit's own frame encryption (see the module above):
//! per epoch, per participant identity or shared by the room.

use super::{CallKeys, EpochKeys};
use crate::{ClientError, Result};
use secrecy::ExposeSecret as _;

/// The exporter label of the LiveKit key material.
pub(super) const LIVEKIT_LABEL: &str = "Hearth LiveKit 1.0";
/// LiveKit key indices cycle through this many (LiveKit's default keyring
/// size): an epoch's index is the epoch modulo it.
pub const LIVEKIT_KEY_INDICES: u64 = 16;

/// Key material for LiveKit's own frame encryption, for one epoch: hand the
/// passphrase to LiveKit's key provider (which derives its AES key from it
/// with PBKDF2, as every LiveKit SDK does for a string key) at `key_index`.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveKitKey {
    /// The passphrase (unpadded base64url of 32 secret bytes).
    pub passphrase: String,
    /// The key index to set it at (and, for this device's own key, to send
    /// with).
    pub key_index: u8,
    /// The circle's epoch it belongs to.
    pub epoch: u64,
}

/// Shows nothing of the passphrase.
impl std::fmt::Debug for LiveKitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitKey")
            .field("key_index", &self.key_index)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl EpochKeys {
    /// The LiveKit key of `label` (a participant's identity, or the room's
    /// shared key) in this epoch.
    fn livekit_key(&self, label: &[u8]) -> Result<LiveKitKey> {
        use hmac::Mac as _;
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(self.livekit.expose_secret())
                .map_err(|_| ClientError::Unexpected("LiveKit key material"))?;
        mac.update(label);
        let passphrase = hearth_protocol::Base64Bytes::encode(&mac.finalize().into_bytes());
        Ok(LiveKitKey {
            passphrase,
            key_index: u8::try_from(self.epoch % LIVEKIT_KEY_INDICES).unwrap_or(0),
            epoch: self.epoch,
        })
    }
}

impl CallKeys {
    /// LiveKit keys of the participant with LiveKit identity `identity`:
    /// the current epoch's first, then the previous epoch's while its grace
    /// period lasts (set both in the key provider, so frames in flight still
    /// decrypt; send with the first).
    pub fn livekit_keys(&self, identity: &str) -> Result<Vec<LiveKitKey>> {
        self.livekit_keys_of(&[b"participant".as_slice(), identity.as_bytes()].concat())
    }

    /// The room's shared LiveKit keys (for LiveKit's
    /// `ExternalE2EEKeyProvider`, one key for everyone): current, then
    /// previous during the grace period.
    pub fn livekit_shared_keys(&self) -> Result<Vec<LiveKitKey>> {
        self.livekit_keys_of(b"shared")
    }

    fn livekit_keys_of(&self, label: &[u8]) -> Result<Vec<LiveKitKey>> {
        let mut state = self.lock()?;
        let mut keys = vec![state.current.livekit_key(label)?];
        if let Some(previous) = state.previous() {
            keys.push(previous.livekit_key(label)?);
        }
        Ok(keys)
    }
}
