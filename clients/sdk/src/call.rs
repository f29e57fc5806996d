//! Video calls: the server lets this device into the circle's room on the
//! SFU (`join_call`), and the media keys come from the circle's MLS group, so
//! the SFU relays frames it cannot decrypt (SFrame, RFC 9605).
//!
//! Per epoch, `base_key = MLS-Exporter("SFrame 1.0 Base Key", "", Nk)`
//! (§5.2); a sender's key id is built from a context, its leaf index and the
//! epoch's low bits ([`EPOCH_BITS`], [`INDEX_BITS`]), and its key and salt
//! are derived from the base key and that key id (§4.4.2, by the `sframe`
//! crate). The suite is `AES_128_GCM_SHA256_128`, like the circle's MLS
//! ciphersuite.
//!
//! **No key and nonce ever repeat.** The nonce is the salt XOR the frame
//! counter, and the key and salt follow from the key id. Every handle
//! ([`CallRegistry::open`], i.e. every `join_call`, in this process or after
//! a restart) draws a fresh random context of [`CONTEXT_BITS`] bits for its
//! key ids (§5.2 leaves those bits to the sender), so two handles of one
//! member in one epoch encrypt under different keys; within a handle one
//! counter, under the handle's lock, numbers every frame, and a new epoch
//! brings a new base key. Two handles share a key only if they draw the
//! same 52 random bits in the same epoch (2⁻⁵² for a pair). A receiver
//! derives the key from the whole key id, so contexts need no agreement;
//! it keeps a sender's key only once a frame under it has authenticated,
//! so forged key ids cost it a derivation and no memory.
//!
//! **LiveKit's own end-to-end encryption.** An app on LiveKit's client SDK
//! (JS, Swift, Kotlin) cannot insert SFrame; it encrypts with LiveKit's frame
//! format and takes keys through its KeyProvider. [`CallKeys::livekit_keys`]
//! gives it, per epoch, a key per participant: a passphrase for the
//! participant's LiveKit identity and a key index (the epoch modulo
//! [`LIVEKIT_KEY_INDICES`]). The passphrase is
//! `base64url(HMAC-SHA256(MLS-Exporter("Hearth LiveKit 1.0", "", 32),
//! "participant" || identity))`, so any member derives any participant's key
//! from the identity the room shows, with no mapping from the server; the
//! server and the SFU never hold the exporter secret. A removed member cannot
//! derive the next epoch's. [`CallKeys::livekit_shared_keys`] is the same for
//! one key shared by the room (LiveKit's `ExternalE2EEKeyProvider`).
//!
//! A [`CallKeys`] handle follows the circle: when this client merges a commit
//! (a join, a removal, an update), it moves to the new epoch's keys by itself
//! and says so on [`CallKeys::changes`]. The previous epoch's keys decrypt
//! for a grace period, so frames in flight still play; then they are dropped.
//! A member removed by a commit never learns the next epoch's secret, so it
//! cannot derive the keys.

use crate::{ClientError, Result};
use hearth_protocol::mls::failed;
use openmls::prelude::{MlsGroup, OpenMlsCrypto};
use secrecy::{ExposeSecret as _, SecretBox};
use sframe::CipherSuite;
use sframe::frame::{EncryptedFrame, MediaFrame, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};
use sframe::mls::{MlsKeyId, MlsKeyIdBitRange};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The SFrame ciphersuite: AES-128-GCM with SHA-256, 16-byte keys.
pub const SUITE: CipherSuite = CipherSuite::AesGcm128Sha256;
/// The exporter label of RFC 9605 §5.2.
const BASE_KEY_LABEL: &str = "SFrame 1.0 Base Key";
/// Bits of the key id that carry the epoch's low bits.
pub const EPOCH_BITS: u8 = 4;
/// Bits of the key id that carry the sender's leaf index (room for 256).
pub const INDEX_BITS: u8 = 8;
/// Bits of the key id above the leaf index: the handle's random context.
pub const CONTEXT_BITS: u32 = u64::BITS - EPOCH_BITS as u32 - INDEX_BITS as u32;
/// Decryption keys kept per epoch (a key per sender handle that has sent
/// an authentic frame; the oldest go first past this).
const KEPT_DECRYPTION_KEYS: usize = 256;
/// How long the previous epoch's keys keep decrypting, by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

mod livekit;
use livekit::LIVEKIT_LABEL;
pub use livekit::{LIVEKIT_KEY_INDICES, LiveKitKey};

fn bit_range() -> MlsKeyIdBitRange {
    MlsKeyIdBitRange::new(EPOCH_BITS, INDEX_BITS)
}

fn frame_error(err: sframe::error::SframeError) -> ClientError {
    ClientError::Frame(Box::new(err))
}

/// The key id a member with leaf `index` sends with in `epoch`, from a
/// handle whose context is `context` (below 2^[`CONTEXT_BITS`]).
pub fn key_id(context: u64, epoch: u64, index: u32) -> Result<u64> {
    Ok(MlsKeyId::try_new(context, epoch, index, bit_range())
        .map_err(frame_error)?
        .into())
}

/// A fresh random context for a new handle's key ids.
fn fresh_context() -> Result<u64> {
    Ok(u64::from_le_bytes(crate::random::<8>()?) >> (u64::BITS - CONTEXT_BITS))
}

/// One epoch's keys: the base key, this handle's encryption key, and the
/// decryption keys of the senders whose frames have authenticated so far.
struct EpochKeys {
    epoch: u64,
    base_key: SecretBox<Vec<u8>>,
    /// The epoch's LiveKit key material.
    livekit: SecretBox<Vec<u8>>,
    encrypt: EncryptionKey,
    key_id: u64,
    decrypt: HashMap<u64, DecryptionKey>,
    /// The order the decryption keys were kept in, oldest first.
    kept: std::collections::VecDeque<u64>,
}

impl EpochKeys {
    fn new(
        epoch: u64,
        index: u32,
        context: u64,
        base_key: Vec<u8>,
        livekit: Vec<u8>,
    ) -> Result<Self> {
        let key_id = key_id(context, epoch, index)?;
        let encrypt = EncryptionKey::derive_from(SUITE, key_id, &base_key).map_err(frame_error)?;
        Ok(Self {
            epoch,
            base_key: SecretBox::new(Box::new(base_key)),
            livekit: SecretBox::new(Box::new(livekit)),
            encrypt,
            key_id,
            decrypt: HashMap::new(),
            kept: std::collections::VecDeque::new(),
        })
    }

    /// Decrypts a frame under its sender's key, deriving that key the first
    /// time and keeping it only if the frame authenticates.
    fn decrypt(&mut self, encrypted: &EncryptedFrame, key_id: u64) -> Result<Vec<u8>> {
        if let Some(key) = self.decrypt.get(&key_id) {
            let media = encrypted.decrypt(key).map_err(frame_error)?;
            return Ok(media.payload().to_vec());
        }
        let key = DecryptionKey::derive_from(SUITE, key_id, self.base_key.expose_secret())
            .map_err(frame_error)?;
        let payload = encrypted
            .decrypt(&key)
            .map_err(frame_error)?
            .payload()
            .to_vec();
        if self.kept.len() >= KEPT_DECRYPTION_KEYS
            && let Some(oldest) = self.kept.pop_front()
        {
            self.decrypt.remove(&oldest);
        }
        self.decrypt.insert(key_id, key);
        self.kept.push_back(key_id);
        Ok(payload)
    }

    fn epoch_bits(&self) -> u64 {
        self.epoch & ((1 << EPOCH_BITS) - 1)
    }
}

/// A change of media keys, as [`CallKeys::changes`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyChange {
    /// The circle's epoch the keys belong to.
    pub epoch: u64,
    /// This device's key id from now on.
    pub key_id: u64,
}

pub(crate) struct CallKeysState {
    /// This handle's context in its key ids, the same in every epoch.
    context: u64,
    current: EpochKeys,
    previous: Option<(EpochKeys, Instant)>,
    counter: MonotonicCounter,
    grace: Duration,
    changes: watch::Sender<KeyChange>,
}

impl CallKeysState {
    /// The previous epoch's keys while their grace period lasts (dropped
    /// once it is over).
    fn previous(&mut self) -> Option<&mut EpochKeys> {
        let grace = self.grace;
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, retired)| retired.elapsed() > grace)
        {
            self.previous = None;
        }
        self.previous.as_mut().map(|(keys, _)| keys)
    }

    /// Moves to a newer epoch's keys; the current ones become the previous.
    fn advance(&mut self, next: EpochKeys) {
        if next.epoch <= self.current.epoch {
            return;
        }
        let change = KeyChange {
            epoch: next.epoch,
            key_id: next.key_id,
        };
        let retired = std::mem::replace(&mut self.current, next);
        self.previous = Some((retired, Instant::now()));
        self.counter = MonotonicCounter::default();
        self.changes.send_replace(change);
    }
}

/// A circle's media keys for a call: encrypt this device's frames, decrypt
/// others'. Cheap to clone; every clone is the same handle.
#[derive(Clone)]
pub struct CallKeys {
    state: Arc<Mutex<CallKeysState>>,
}

impl std::fmt::Debug for CallKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallKeys { .. }")
    }
}

impl CallKeys {
    fn starting_with(context: u64, current: EpochKeys) -> Self {
        let (changes, _) = watch::channel(KeyChange {
            epoch: current.epoch,
            key_id: current.key_id,
        });
        let state = Arc::new(Mutex::new(CallKeysState {
            context,
            current,
            previous: None,
            counter: MonotonicCounter::default(),
            grace: DEFAULT_GRACE,
            changes,
        }));
        Self { state }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, CallKeysState>> {
        self.state.lock().map_err(|_| ClientError::Task)
    }

    /// This device's key id now (it changes with the epoch).
    pub fn key_id(&self) -> Result<u64> {
        Ok(self.lock()?.current.key_id)
    }

    /// The circle's epoch the current keys belong to.
    pub fn epoch(&self) -> Result<u64> {
        Ok(self.lock()?.current.epoch)
    }

    /// How long the previous epoch's keys keep decrypting after a change.
    pub fn set_grace(&self, grace: Duration) -> Result<()> {
        self.lock()?.grace = grace;
        Ok(())
    }

    /// Every change of keys, as it happens (the latest one is kept).
    pub fn changes(&self) -> Result<watch::Receiver<KeyChange>> {
        Ok(self.lock()?.changes.subscribe())
    }

    /// Encrypts one media frame with this device's current key: an SFrame
    /// (header, then ciphertext) for the SFU to relay.
    pub fn encrypt(&self, frame: &[u8]) -> Result<Vec<u8>> {
        let mut state = self.lock()?;
        let state = &mut *state;
        let media = MediaFrame::try_new(&mut state.counter, frame).map_err(frame_error)?;
        let encrypted = media.encrypt(&state.current.encrypt).map_err(frame_error)?;
        Ok(encrypted.as_ref().to_vec())
    }

    /// Decrypts another member's frame, with the current epoch's keys or,
    /// during the grace period, the previous epoch's.
    pub fn decrypt(&self, frame: &[u8]) -> Result<Vec<u8>> {
        let encrypted = EncryptedFrame::try_new(frame).map_err(frame_error)?;
        let key_id = encrypted.header().key_id();
        let epoch_bits = MlsKeyId::from_key_id(key_id, bit_range()).epoch_lsb();
        let mut state = self.lock()?;
        let keys = if state.current.epoch_bits() == epoch_bits {
            &mut state.current
        } else {
            match state.previous() {
                Some(previous) if previous.epoch_bits() == epoch_bits => previous,
                _ => return Err(ClientError::KeyUnavailable),
            }
        };
        keys.decrypt(&encrypted, key_id)
    }
}

/// The epoch's keys for a handle of this device with key id context
/// `context`, from its group.
fn epoch_keys(group: &MlsGroup, crypto: &impl OpenMlsCrypto, context: u64) -> Result<EpochKeys> {
    let base_key = group
        .export_secret(crypto, BASE_KEY_LABEL, b"", SUITE.key_len())
        .map_err(failed("exporting the SFrame base key"))?;
    let livekit = group
        .export_secret(crypto, LIVEKIT_LABEL, b"", 32)
        .map_err(failed("exporting the LiveKit key material"))?;
    EpochKeys::new(
        group.epoch().as_u64(),
        group.own_leaf_index().u32(),
        context,
        base_key,
        livekit,
    )
}

/// The live call key handles of each circle, so merging a commit can move
/// them to the new epoch.
#[derive(Default)]
pub(crate) struct CallRegistry(HashMap<Vec<u8>, Vec<Weak<Mutex<CallKeysState>>>>);

impl CallRegistry {
    /// A new handle for the group's current epoch, with a fresh context in
    /// its key ids, kept up to date from now on.
    pub fn open(
        &mut self,
        circle: &[u8],
        group: &MlsGroup,
        crypto: &impl OpenMlsCrypto,
    ) -> Result<CallKeys> {
        let context = fresh_context()?;
        let keys = CallKeys::starting_with(context, epoch_keys(group, crypto, context)?);
        self.0
            .entry(circle.to_vec())
            .or_default()
            .push(Arc::downgrade(&keys.state));
        Ok(keys)
    }

    /// After a commit merged: moves the circle's live handles to the group's
    /// epoch, forgetting handles nobody holds any more.
    pub fn rekey(
        &mut self,
        circle: &[u8],
        group: &MlsGroup,
        crypto: &impl OpenMlsCrypto,
    ) -> Result<()> {
        let Some(handles) = self.0.get_mut(circle) else {
            return Ok(());
        };
        handles.retain(|h| h.strong_count() > 0);
        for handle in handles.iter().filter_map(Weak::upgrade) {
            let mut state = handle.lock().map_err(|_| ClientError::Task)?;
            let next = epoch_keys(group, crypto, state.context)?;
            state.advance(next);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
