//! The little MLS the server does: checking KeyPackages against Hearth's MLS
//! profile (`hearth_protocol::mls`) before it hands them out. Everything else
//! the server relays is opaque ciphertext.

use crate::storage::NewKeyPackage;
use hearth_protocol::DeviceId;
use hearth_protocol::key_packages::KeyPackageRejection;

/// A KeyPackage that passed every check.
#[derive(Debug, Clone)]
pub struct CheckedKeyPackage {
    /// What to store.
    pub key_package: NewKeyPackage,
    /// Whether it carries the last-resort extension.
    pub last_resort: bool,
}

/// Checks a KeyPackage uploaded by `device_id`, whose registered Ed25519 key
/// is `device_key`, with the profile's rules.
pub fn check_key_package(
    bytes: &[u8],
    device_id: &DeviceId,
    device_key: &[u8],
) -> Result<CheckedKeyPackage, KeyPackageRejection> {
    let checked = hearth_protocol::mls::check_key_package(bytes, device_id, device_key)?;
    Ok(CheckedKeyPackage {
        key_package: NewKeyPackage {
            hash_ref: checked.hash_ref,
            data: checked.framed,
            expires_at: i64::try_from(checked.not_after).unwrap_or(i64::MAX),
            cipher_suite: checked.cipher_suite,
        },
        last_resort: checked.last_resort,
    })
}
