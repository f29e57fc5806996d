//! The error body every failing request answers with, and its stable codes.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code. Clients branch on this, never on the
/// human-readable message. New codes may appear; an older client reads them as
/// `Unknown` and goes by the status.
///
/// The roster rules a commit bundle is checked against each have their own
/// code: `not_facilitator` (403), and with 422 `duplicate_device`,
/// `device_on_roster`, `device_not_on_roster`, `unknown_device`,
/// `welcome_missing`, `unknown_join_request`, `join_request_mismatch` and
/// `circle_full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// 400: the body is not valid JSON of the expected shape, or a path or query
    /// parameter does not parse.
    BadRequest,
    /// 401: authentication failed. Unknown device, wrong signature, revoked device,
    /// bad or expired token all answer with this one code and one message.
    Unauthorized,
    /// 403: authenticated, but not allowed to do this.
    Forbidden,
    /// 403: only a facilitator of the circle may do this (add or remove
    /// others, manage invites and join requests).
    NotFacilitator,
    /// 403: the link token is unknown, used or expired.
    LinkTokenInvalid,
    /// 403: the invite is unknown, used up, revoked or expired.
    InviteInvalid,
    /// 403: the facilitator code is unknown, used or expired.
    FacilitatorCodeInvalid,
    /// 403: on this server only accounts the operator enrolled as
    /// facilitators may open circles (redeem a facilitator code first).
    NotEnrolled,
    /// 403: the account holds as many circles, devices or outstanding
    /// invites as this server allows (the message says which).
    QuotaExceeded,
    /// 404: no such resource (or one the caller may not know about).
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: this public key is already registered to a device.
    DeviceExists,
    /// 409: the commit or message was made for an epoch the circle has left
    /// behind; the body's `current_epoch` says where the circle is.
    StaleEpoch,
    /// 409: a circle with this id exists already.
    CircleExists,
    /// 409: the device is on the circle's roster already.
    AlreadyMember,
    /// 409: this message id was used before with different content.
    DuplicateMessageId,
    /// 409: the schedule snapshot changed since the version the write names;
    /// the body's `current_version` says which is stored.
    SnapshotConflict,
    /// 422: the change would take the circle over its member limit.
    CircleFull,
    /// 422: a device appears more than once in a roster change.
    DuplicateDevice,
    /// 422: a device the commit adds is already on the roster.
    DeviceOnRoster,
    /// 422: a device the commit removes is not on the roster.
    DeviceNotOnRoster,
    /// 422: a device the commit adds does not exist or is revoked.
    UnknownDevice,
    /// 422: a commit that adds devices carries no Welcome for them.
    WelcomeMissing,
    /// 422: the commit approves a join request the circle does not have.
    UnknownJoinRequest,
    /// 422: an approving commit adds no devices, or devices the join request
    /// did not name.
    JoinRequestMismatch,
    /// 413: the request body is larger than the configured limit.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: well-formed, but a value is not acceptable (for example a key of the
    /// wrong length).
    InvalidRequest,
    /// 429: too many requests; retry after the number of seconds in `Retry-After`.
    RateLimited,
    /// 500: the server failed; nothing about the request was accepted.
    Internal,
    /// 503: the server cannot reach its database for now (`Retry-After`
    /// says when to try again); nothing was accepted.
    Unavailable,
    /// 507: the server's disk (or its database's) is full: nothing was
    /// accepted; try again after `Retry-After`, once the operator has made
    /// room. Reads still work.
    StorageFull,
    /// 503: this server has no video server (SFU) configured.
    VideoUnconfigured,
    /// 422: this server does not send pushes of the kind the target names
    /// (the transport is not configured here).
    PushUnconfigured,
    /// 422: a Web Push endpoint the server will not call: not `https`, or a
    /// loopback, private or link-local address.
    PushEndpointRefused,
    /// 422: a blob is not the MLS message its field expects, or its clear
    /// header does not match the request: an `MLSMessage` of the right wire
    /// format, for this circle's group id, at the declared epoch, carrying
    /// the right content type (see `docs/PROTOCOL.md`, *Framing*).
    MlsFraming,
    /// 422: a commit by a member sent as a `PublicMessage`, which would show
    /// the server its proposals; members commit as `PrivateMessage` (only an
    /// external commit, by a device rejoining, is public).
    PublicCommit,
    /// 422: an application message whose ciphertext is not padded to one of
    /// the sizes the padding rule allows (1 KiB, 2 KiB, 4 KiB, …).
    UnpaddedMessage,
    /// 403: KeyPackages may be claimed only for the caller's own account's
    /// devices, or for devices named in a pending join request of a circle the
    /// caller facilitates.
    ClaimNotAllowed,
    /// A code this version of the protocol does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFacilitator => "not_facilitator",
            Self::FacilitatorCodeInvalid => "facilitator_code_invalid",
            Self::NotEnrolled => "not_enrolled",
            Self::QuotaExceeded => "quota_exceeded",
            Self::LinkTokenInvalid => "link_token_invalid",
            Self::InviteInvalid => "invite_invalid",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::DeviceExists => "device_exists",
            Self::StaleEpoch => "stale_epoch",
            Self::CircleExists => "circle_exists",
            Self::AlreadyMember => "already_member",
            Self::DuplicateMessageId => "duplicate_message_id",
            Self::SnapshotConflict => "snapshot_conflict",
            Self::CircleFull => "circle_full",
            Self::DuplicateDevice => "duplicate_device",
            Self::DeviceOnRoster => "device_on_roster",
            Self::DeviceNotOnRoster => "device_not_on_roster",
            Self::UnknownDevice => "unknown_device",
            Self::WelcomeMissing => "welcome_missing",
            Self::UnknownJoinRequest => "unknown_join_request",
            Self::JoinRequestMismatch => "join_request_mismatch",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidRequest => "invalid_request",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::StorageFull => "storage_full",
            Self::VideoUnconfigured => "video_unconfigured",
            Self::PushUnconfigured => "push_unconfigured",
            Self::PushEndpointRefused => "push_endpoint_refused",
            Self::MlsFraming => "mls_framing",
            Self::PublicCommit => "public_commit",
            Self::UnpaddedMessage => "unpadded_message",
            Self::ClaimNotAllowed => "claim_not_allowed",
            Self::Unknown => "unknown",
        }
    }

    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden
            | Self::NotFacilitator
            | Self::FacilitatorCodeInvalid
            | Self::NotEnrolled
            | Self::QuotaExceeded
            | Self::LinkTokenInvalid
            | Self::InviteInvalid
            | Self::ClaimNotAllowed => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::DeviceExists
            | Self::StaleEpoch
            | Self::CircleExists
            | Self::AlreadyMember
            | Self::DuplicateMessageId
            | Self::SnapshotConflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::InvalidRequest
            | Self::CircleFull
            | Self::DuplicateDevice
            | Self::DeviceOnRoster
            | Self::DeviceNotOnRoster
            | Self::UnknownDevice
            | Self::WelcomeMissing
            | Self::UnknownJoinRequest
            | Self::JoinRequestMismatch
            | Self::PushUnconfigured
            | Self::PushEndpointRefused
            | Self::MlsFraming
            | Self::PublicCommit
            | Self::UnpaddedMessage => 422,
            Self::RateLimited => 429,
            Self::Internal | Self::Unknown => 500,
            Self::Unavailable | Self::VideoUnconfigured => 503,
            Self::StorageFull => 507,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error answer: `{ "code": "...", "message": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The stable machine-readable code.
    pub code: ErrorCode,
    /// A sentence for people. Never contains ids, tokens or request content.
    pub message: String,
    /// With `stale_epoch`: the circle's current epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_epoch: Option<u64>,
    /// With `snapshot_conflict`: the snapshot version stored now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_stable_names() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFacilitator,
            ErrorCode::LinkTokenInvalid,
            ErrorCode::InviteInvalid,
            ErrorCode::FacilitatorCodeInvalid,
            ErrorCode::NotEnrolled,
            ErrorCode::QuotaExceeded,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::DeviceExists,
            ErrorCode::StaleEpoch,
            ErrorCode::CircleExists,
            ErrorCode::AlreadyMember,
            ErrorCode::DuplicateMessageId,
            ErrorCode::SnapshotConflict,
            ErrorCode::CircleFull,
            ErrorCode::DuplicateDevice,
            ErrorCode::DeviceOnRoster,
            ErrorCode::DeviceNotOnRoster,
            ErrorCode::UnknownDevice,
            ErrorCode::WelcomeMissing,
            ErrorCode::UnknownJoinRequest,
            ErrorCode::JoinRequestMismatch,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::InvalidRequest,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
            ErrorCode::Unavailable,
            ErrorCode::StorageFull,
            ErrorCode::VideoUnconfigured,
            ErrorCode::PushUnconfigured,
            ErrorCode::PushEndpointRefused,
            ErrorCode::MlsFraming,
            ErrorCode::PublicCommit,
            ErrorCode::UnpaddedMessage,
            ErrorCode::ClaimNotAllowed,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        let later: ErrorCode = serde_json::from_str("\"stale_epoch_v9\"").unwrap();
        assert_eq!(later, ErrorCode::Unknown);
    }
}
