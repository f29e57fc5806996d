//! KeyPackages: what a device publishes so others can add it to a circle.
//!
//! The server checks every KeyPackage it accepts (ciphersuite, signatures,
//! that the leaf's signature key is the uploading device's registered key,
//! that the credential names the device, lifetime current and at most
//! [`MAX_LIFETIME_SECS`] long). One KeyPackage per device may be its *last
//! resort*: handed out only when the pool is empty, and never consumed.

use crate::{Base64Bytes, DeviceId};
use serde::{Deserialize, Serialize};

/// The longest KeyPackage lifetime accepted: 84 days and one hour.
pub const MAX_LIFETIME_SECS: u64 = 84 * 24 * 3600 + 3600;

/// The identity a device's MLS credential must carry: its device id's
/// sixteen bytes, in a basic credential.
pub fn credential_identity(device_id: &DeviceId) -> Vec<u8> {
    device_id.as_bytes().to_vec()
}

/// `POST /v1/key-packages`: add KeyPackages to the caller's pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadKeyPackages {
    /// KeyPackages: each an `MLSMessage` framing one (wire format
    /// `mls_key_package`), or the bare TLS-serialised `KeyPackage`.
    #[serde(default)]
    pub key_packages: Vec<Base64Bytes>,
    /// A KeyPackage to keep as the last resort, replacing any earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resort: Option<Base64Bytes>,
}

/// Why one KeyPackage of an upload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyPackageRejection {
    /// The bytes are neither an `MLSMessage` framing a KeyPackage nor a bare
    /// TLS-serialised KeyPackage.
    NotAKeyPackage,
    /// Its ciphersuite is not one the server supports.
    UnsupportedCiphersuite,
    /// A signature does not verify.
    BadSignature,
    /// It fails another MLS rule (extensions not in its capabilities, equal
    /// init and encryption keys, protocol version, leaf node source).
    Invalid,
    /// The leaf's signature key is not the uploading device's key.
    ForeignSignatureKey,
    /// The credential does not name the uploading device.
    ForeignCredential,
    /// Its lifetime has ended.
    Expired,
    /// Its lifetime has not begun.
    NotYetValid,
    /// Its lifetime is longer than 84 days and one hour.
    LifetimeTooLong,
    /// The same KeyPackage is already stored.
    Duplicate,
    /// The device's pool is full; top up after some are claimed.
    PoolFull,
    /// Marked (or not marked) last resort where the other was expected.
    LastResortMismatch,
    /// A reason this version of the protocol does not know.
    #[serde(other)]
    Unknown,
}

/// One refused KeyPackage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectedKeyPackage {
    /// Which one: `key_packages[N]` or `last_resort`.
    pub item: String,
    /// Why.
    pub reason: KeyPackageRejection,
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadedKeyPackages {
    /// How many were stored.
    pub accepted: u32,
    /// The refused ones, with reasons.
    pub rejected: Vec<RejectedKeyPackage>,
    /// The pool after the upload.
    pub pool: KeyPackageCount,
}

/// `GET /v1/key-packages/count`: the caller's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyPackageCount {
    /// Unexpired KeyPackages waiting to be claimed (the last resort not
    /// counted).
    pub available: u32,
    /// Whether an unexpired last-resort KeyPackage is stored.
    pub last_resort: bool,
}

/// The ciphersuite a claim asks for when it names none:
/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`, the suite Hearth's
/// circles are created with.
pub const DEFAULT_CIPHER_SUITE: u16 = 1;

/// `POST /v1/key-packages/claim`: one KeyPackage for each device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimKeyPackages {
    /// The devices to claim for (at most 50): the caller's own account's
    /// devices, or devices named in a pending join request of a circle the
    /// caller facilitates. Empty when `join_request` names them.
    #[serde(default)]
    pub device_ids: Vec<DeviceId>,
    /// Instead of `device_ids`: every device of this pending join request
    /// (of a circle the caller facilitates), so approving one costs no
    /// request to look it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_request: Option<JoinRequestRef>,
    /// The ciphersuite of the circle they are for (RFC 9420's code; default
    /// 1). A device with no KeyPackage in this suite is `unavailable`, and
    /// none of its other KeyPackages is consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<u16>,
}

/// A pending join request, by its circle and id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequestRef {
    /// The circle it asks to join.
    pub circle_id: crate::CircleId,
    /// The join request.
    #[serde(with = "crate::ids::uuid_text")]
    pub join_request_id: uuid::Uuid,
}

/// One claimed KeyPackage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedKeyPackage {
    /// Whose it is.
    pub device_id: DeviceId,
    /// The KeyPackage, framed as an `MLSMessage` (wire format
    /// `mls_key_package`) whichever way it was uploaded.
    pub key_package: Base64Bytes,
    /// True when the pool was empty and this is the device's last resort.
    pub last_resort: bool,
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedKeyPackages {
    /// One per device that had any.
    pub key_packages: Vec<ClaimedKeyPackage>,
    /// Devices with nothing to hand out (or unknown).
    pub unavailable: Vec<DeviceId>,
}
