//! Device registration, logins, device management and account deletion.
//!
//! A device is identified by an Ed25519 signature key. It proves possession by
//! signing a fresh single-use challenge from the server; the exact bytes signed
//! are built by [`register_message`] and [`login_message`], which are domain
//! separated so a signature made for one purpose is worthless for the other.

use crate::{AccountId, Base64Bytes, DeviceId};
use serde::{Deserialize, Serialize};

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of a server challenge.
pub const CHALLENGE_LEN: usize = 32;

const REGISTER_CONTEXT: &[u8] = b"hearth/v1 register device\0";
const LOGIN_CONTEXT: &[u8] = b"hearth/v1 log in\0";

/// The bytes a new device signs to register: a context string, the challenge and
/// its own public key.
pub fn register_message(challenge: &[u8], public_key: &[u8]) -> Vec<u8> {
    [REGISTER_CONTEXT, challenge, public_key].concat()
}

/// The bytes a registered device signs to log in: a context string, the
/// challenge and its device id.
pub fn login_message(challenge: &[u8], device_id: &DeviceId) -> Vec<u8> {
    [LOGIN_CONTEXT, challenge, device_id.as_bytes()].concat()
}

/// `POST /v1/challenges`: a fresh single-use challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// 32 random bytes to sign.
    pub challenge: Base64Bytes,
    /// Unix seconds after which the challenge is refused.
    pub expires_at: i64,
}

/// `POST /v1/devices`: register this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterDevice {
    /// The device's Ed25519 public key (32 bytes).
    pub public_key: Base64Bytes,
    /// A challenge from `POST /v1/challenges`.
    pub challenge: Base64Bytes,
    /// Ed25519 signature over `"hearth/v1 register device" || 0x00 ||
    /// challenge || public_key` (docs/PROTOCOL.md §2 has a test vector).
    pub signature: Base64Bytes,
    /// A one-time link token from a device already on an account: join that
    /// account instead of creating a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_token: Option<String>,
}

/// The answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredDevice {
    /// The account the device belongs to.
    pub account_id: AccountId,
    /// The new device.
    pub device_id: DeviceId,
    /// A login for it, started by the registration (the signed challenge
    /// proved the key as a login's does): no separate login is needed.
    pub login: LoginTokens,
}

/// `POST /v1/logins`: log in by signing a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    /// The device logging in.
    pub device_id: DeviceId,
    /// A challenge from `POST /v1/challenges`.
    pub challenge: Base64Bytes,
    /// Ed25519 signature over `"hearth/v1 log in" || 0x00 || challenge ||
    /// device_id` (the id's 16 bytes; docs/PROTOCOL.md §2 has a test vector).
    pub signature: Base64Bytes,
}

/// `POST /v1/logins/refresh`: renew a login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    /// The refresh token from the latest login or refresh.
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshRequest { refresh_token: <redacted> }")
    }
}

/// A login: an access token for requests and a refresh token to renew it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginTokens {
    /// A JWT to send as `Authorization: Bearer ...`.
    pub access_token: String,
    /// Always `"Bearer"`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// An opaque token for `POST /v1/logins/refresh`; single use, rotated on
    /// every refresh. Presenting it a second time ends the whole login.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

impl std::fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTokens")
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// One device of the caller's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// The device.
    pub device_id: DeviceId,
    /// Its Ed25519 public key.
    pub public_key: Base64Bytes,
    /// Unix seconds when it registered.
    pub created_at: i64,
    /// Whether this is the device making the request.
    pub current: bool,
}

/// `GET /v1/devices`: the caller's account's active devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceList {
    /// The account.
    pub account_id: AccountId,
    /// Its devices that are not revoked, oldest first.
    pub devices: Vec<DeviceInfo>,
}

/// `POST /v1/link-tokens`: a one-time token that lets a new device join the
/// caller's account.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkToken {
    /// The token, to pass to the new device out of band.
    pub link_token: String,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

impl std::fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_messages_are_domain_separated() {
        let challenge = [7u8; CHALLENGE_LEN];
        let device: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        let register = register_message(&challenge, device.as_bytes());
        let login = login_message(&challenge, &device);
        assert_ne!(register, login);
        assert!(login.ends_with(device.as_bytes()));
        assert!(register.starts_with(b"hearth/v1 register device\0"));
    }

    #[test]
    fn debug_output_hides_tokens() {
        let tokens = LoginTokens {
            access_token: "secret-access".into(),
            token_type: "Bearer".into(),
            expires_in: 900,
            refresh_token: "secret-refresh".into(),
            refresh_expires_in: 60,
        };
        let shown = format!(
            "{tokens:?} {:?}",
            RefreshRequest {
                refresh_token: "secret-refresh".into()
            }
        );
        assert!(!shown.contains("secret"));
    }
}

/// `POST /v1/account/facilitator`: a facilitator code the operator minted
/// (`hearth-server admin facilitator-code`), redeemed by a device of the
/// account to enrol as a facilitator.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacilitatorCode {
    /// The code (`hfc_…`), passed from the operator out of band.
    pub code: String,
}

impl std::fmt::Debug for FacilitatorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FacilitatorCode { code: [redacted] }")
    }
}

/// `GET` and `POST /v1/account/facilitator`: whether the account may open
/// circles here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacilitatorStatus {
    /// Whether this server lets only enrolled accounts open circles.
    pub enrolment_required: bool,
    /// When the account was enrolled as a facilitator (unix seconds), if it was.
    pub enrolled_at: Option<i64>,
}
