//! Targets at rest: AES-256-GCM under `push.target_key`, a key that lives in
//! configuration, so a copy of the database alone does not say which phone,
//! which platform or which push service a device uses. The device id is the
//! associated data: a sealed target moved to another row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hearth_protocol::DeviceId;
use hearth_protocol::push::PushTarget;

const NONCE_LEN: usize = 12;
const CONTEXT: &[u8] = b"hearth/v1 push target\0";

/// Why a target could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The configured key is not 32 bytes of unpadded base64url.
    #[error("push.target_key must be 32 bytes of unpadded base64url")]
    BadKey,
    /// The stored bytes do not open under this key for this device (another
    /// key, another row, or tampering).
    #[error("a stored push target does not open under the configured key")]
    Unopenable,
    /// Randomness failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// Seals and opens targets.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer under the configured key.
    pub fn new(key_base64url: &str) -> Result<Self, SealError> {
        let key = hearth_protocol::Base64Bytes::decode(key_base64url.trim())
            .filter(|k| k.len() == 32)
            .ok_or(SealError::BadKey)?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| SealError::BadKey)?;
        Ok(Self { cipher })
    }

    /// `nonce || ciphertext` of the target's JSON.
    pub fn seal(&self, device: DeviceId, target: &PushTarget) -> Result<Vec<u8>, SealError> {
        let plain = serde_json::to_vec(target).map_err(|_| SealError::Unopenable)?;
        let nonce: [u8; NONCE_LEN] =
            crate::crypto::random_bytes().map_err(|_| SealError::Random)?;
        let aad = [CONTEXT, device.as_bytes()].concat();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Unopenable)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The target sealed for this device.
    pub fn open(&self, device: DeviceId, sealed: &[u8]) -> Result<PushTarget, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Unopenable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Unopenable)?;
        let aad = [CONTEXT, device.as_bytes()].concat();
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Unopenable)?;
        serde_json::from_slice(&plain).map_err(|_| SealError::Unopenable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_opens_only_for_its_device_under_its_key() {
        let key = hearth_protocol::Base64Bytes::encode(&[7u8; 32]);
        let sealer = Sealer::new(&key).unwrap();
        let device = DeviceId::from_uuid(uuid::Uuid::from_bytes([1; 16]));
        let target = PushTarget::Fcm {
            token: "registration-token-canary".into(),
        };
        let sealed = sealer.seal(device, &target).unwrap();
        assert!(!sealed.windows(b"canary".len()).any(|w| w == b"canary"));
        assert_eq!(sealer.open(device, &sealed).unwrap(), target);
        assert!(
            sealer
                .open(
                    DeviceId::from_uuid(uuid::Uuid::from_bytes([2; 16])),
                    &sealed
                )
                .is_err()
        );
        let other = Sealer::new(&hearth_protocol::Base64Bytes::encode(&[8u8; 32])).unwrap();
        assert!(other.open(device, &sealed).is_err());
        assert!(Sealer::new("short").is_err());
    }
}
