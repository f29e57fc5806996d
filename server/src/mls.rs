//! The little MLS the server does: checking KeyPackages before it hands them
//! out. Everything else the server relays is opaque ciphertext.

use crate::storage::NewKeyPackage;
use hearth_protocol::DeviceId;
use hearth_protocol::key_packages::{KeyPackageRejection, MAX_LIFETIME_SECS, credential_identity};
use openmls::prelude::tls_codec::Deserialize as _;
use openmls::prelude::{
    BasicCredential, Ciphersuite, KeyPackageIn, KeyPackageVerifyError, ProtocolVersion,
};
use openmls::treesync::errors::LifetimeError;
use openmls_rust_crypto::RustCrypto;

/// The ciphersuites the server accepts: X25519, AES-128-GCM or
/// ChaCha20-Poly1305, SHA-256, and Ed25519 — whose signature key is the
/// device's registered key.
pub const SUPPORTED_CIPHERSUITES: [Ciphersuite; 2] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
];

/// A KeyPackage that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedKeyPackage {
    /// What to store.
    pub key_package: NewKeyPackage,
    /// Whether it carries the last-resort extension.
    pub last_resort: bool,
}

/// Checks a KeyPackage uploaded by `device_id`, whose registered Ed25519 key
/// is `device_key`.
pub fn check_key_package(
    bytes: &[u8],
    device_id: &DeviceId,
    device_key: &[u8],
) -> Result<CheckedKeyPackage, KeyPackageRejection> {
    let crypto = RustCrypto::default();
    let parsed = KeyPackageIn::tls_deserialize_exact(bytes)
        .map_err(|_| KeyPackageRejection::NotAKeyPackage)?;
    let key_package =
        parsed
            .validate(&crypto, ProtocolVersion::Mls10)
            .map_err(|err| match err {
                KeyPackageVerifyError::LifetimeError(LifetimeError::Expired { .. }) => {
                    KeyPackageRejection::Expired
                }
                KeyPackageVerifyError::LifetimeError(LifetimeError::NotValidYet { .. }) => {
                    KeyPackageRejection::NotYetValid
                }
                KeyPackageVerifyError::InvalidSignature
                | KeyPackageVerifyError::InvalidLeafNodeSignature => {
                    KeyPackageRejection::BadSignature
                }
                _ => KeyPackageRejection::Invalid,
            })?;
    if !SUPPORTED_CIPHERSUITES.contains(&key_package.ciphersuite()) {
        return Err(KeyPackageRejection::UnsupportedCiphersuite);
    }
    let leaf = key_package.leaf_node();
    if leaf.signature_key().as_slice() != device_key {
        return Err(KeyPackageRejection::ForeignSignatureKey);
    }
    let credential = BasicCredential::try_from(leaf.credential().clone())
        .map_err(|_| KeyPackageRejection::ForeignCredential)?;
    if credential.identity() != credential_identity(device_id).as_slice() {
        return Err(KeyPackageRejection::ForeignCredential);
    }
    let lifetime = key_package.life_time();
    if lifetime.not_after().saturating_sub(lifetime.not_before()) > MAX_LIFETIME_SECS {
        return Err(KeyPackageRejection::LifetimeTooLong);
    }
    let hash_ref = key_package
        .hash_ref(&crypto)
        .map_err(|_| KeyPackageRejection::Invalid)?;
    Ok(CheckedKeyPackage {
        key_package: NewKeyPackage {
            hash_ref: hash_ref.as_slice().to_vec(),
            data: bytes.to_vec(),
            expires_at: i64::try_from(lifetime.not_after()).unwrap_or(i64::MAX),
        },
        last_resort: key_package.last_resort(),
    })
}
