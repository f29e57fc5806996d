//! Secrets at rest on the device. A phone is backed up, lost and inspected:
//! with a key from the platform's key store (Android Keystore, iOS
//! Keychain), everything sensitive in `client.db`, the values openmls keeps
//! there among them, is sealed with XChaCha20-Poly1305 before it reaches
//! the disk.
//!
//! Why columns and not the whole file (SQLCipher): the SDK shares
//! `libsqlite3-sys` with the server's `sqlx`, and Cargo unifies features
//! across a build, so SQLCipher would reach the server too, with OpenSSL
//! underneath. Sealing values costs a few microseconds each and needs no C.
//!
//! What stays readable: the tables' keys and numbers — which circles (their
//! MLS group ids), how many messages and when, which devices, cursors —
//! and openmls's own table keys. What is sealed: the device's key seed, the
//! tokens, invite note keys, settings (the display name), names, titles,
//! every message and calendar item, and every MLS value (group secrets,
//! private keys, the ratchet tree). Each value is bound to its place (table,
//! column and row) as associated data, so a sealed value moved to another
//! row does not open; openmls's values are bound to their kind only (the
//! codec does not see the row).
//!
//! openmls encodes values through a codec with no state of its own, so the
//! key reaches it through a thread-local that `Client::with` sets for the
//! duration of each step ([`enter`]). The same codec encodes openmls's table
//! keys, which must come out the same each time to be found again: the codec
//! seals deterministically ([`Vault::seal_fixed`], a synthetic nonce from an
//! HMAC of the value, as SIV does), so equal MLS values are equal on disk
//! and nothing else is learnt.

use crate::error::{ClientError, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use std::cell::RefCell;
use std::sync::Arc;

const NONCE_LEN: usize = 24;
const CONTEXT: &[u8] = b"hearth/v1 vault\0";
/// What the check value seals: opening it proves the key is the store's.
const CHECK: &[u8] = b"hearth vault check";

/// The key a store is sealed with.
pub struct Vault {
    cipher: XChaCha20Poly1305,
    /// Keys the synthetic nonces of [`Vault::seal_fixed`].
    nonces: Hmac<Sha256>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(..)")
    }
}

impl Vault {
    /// A vault under a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        // Two keys from one: the cipher's, and the synthetic nonces'.
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let cipher_key = derive(b"hearth/v1 vault cipher");
        let nonce_key = derive(b"hearth/v1 vault nonces");
        Self {
            cipher: XChaCha20Poly1305::new(&cipher_key.into()),
            nonces: <Hmac<Sha256> as hmac::Mac>::new_from_slice(&nonce_key)
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
        }
    }

    /// `nonce || ciphertext`, bound to `place`, with a random nonce.
    pub fn seal(&self, place: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        self.seal_with(random()?, place, plain)
    }

    /// Like [`Vault::seal`], but the same value at the same place always
    /// seals to the same bytes (the nonce is an HMAC of both), so sealed
    /// values can be looked up.
    pub fn seal_fixed(&self, place: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let mut mac = self.nonces.clone();
        mac.update(&(place.len() as u64).to_be_bytes());
        mac.update(place);
        mac.update(plain);
        let digest = mac.finalize().into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&digest[..NONCE_LEN]);
        self.seal_with(nonce, place, plain)
    }

    fn seal_with(&self, nonce: [u8; NONCE_LEN], place: &[u8], plain: &[u8]) -> Result<Vec<u8>> {
        let aad = [CONTEXT, place].concat();
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| ClientError::Unexpected("sealing a value"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// The value sealed at `place`. A value that does not open means the
    /// file was changed, or is not this vault's.
    pub fn open(&self, place: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(ClientError::Unexpected(
                "a sealed value too short to be one",
            ));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| ClientError::Unexpected("a sealed value too short to be one"))?;
        let aad = [CONTEXT, place].concat();
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| ClientError::Unexpected("a sealed value that does not open"))
    }

    /// A value whose opening proves the key (stored once per store).
    pub fn check_value(&self) -> Result<Vec<u8>> {
        self.seal(b"check", CHECK)
    }

    /// Whether `stored` is this vault's check value.
    pub fn verifies(&self, stored: &[u8]) -> bool {
        self.open(b"check", stored).is_ok_and(|v| v == CHECK)
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| ClientError::Unexpected("no randomness"))?;
    Ok(bytes)
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Vault>>> = const { RefCell::new(None) };
}

/// The vault of the step running on this thread, for openmls's codec.
pub(crate) fn current() -> Option<Arc<Vault>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Makes `vault` this thread's until the guard drops.
pub(crate) fn enter(vault: Option<Arc<Vault>>) -> Entered {
    let previous = CURRENT.with(|c| c.replace(vault));
    Entered(previous)
}

/// Restores the thread's previous vault when dropped.
pub(crate) struct Entered(Option<Arc<Vault>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_in_its_place_under_its_key() {
        let vault = Vault::new(&[7; 32]);
        let sealed = vault.seal(b"history/1", b"canary").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(vault.open(b"history/1", &sealed).unwrap(), b"canary");
        assert!(vault.open(b"history/2", &sealed).is_err());
        assert!(Vault::new(&[8; 32]).open(b"history/1", &sealed).is_err());
        let check = vault.check_value().unwrap();
        assert!(vault.verifies(&check));
        assert!(!Vault::new(&[8; 32]).verifies(&check));
        let fixed = vault.seal_fixed(b"mls", b"group id").unwrap();
        assert_eq!(fixed, vault.seal_fixed(b"mls", b"group id").unwrap());
        assert_ne!(fixed, vault.seal_fixed(b"mls", b"group id 2").unwrap());
        assert_eq!(vault.open(b"mls", &fixed).unwrap(), b"group id");
        assert!(!fixed.windows(8).any(|w| w == b"group id"));
    }
}
