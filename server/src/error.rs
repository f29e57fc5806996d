//! The API's error type: every failure becomes `{ "code", "message" }` with a
//! stable code and the matching status. Messages never carry ids, tokens or
//! request content; internal causes are logged (without such values) and
//! answered with a bare `internal`.

use crate::crypto::RandomError;
use crate::delivery::{DeliveryError, RosterRule};
use crate::push::TargetError;
use crate::storage::StorageError;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use hearth_protocol::{ErrorBody, ErrorCode};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Authentication failed. One variant for every cause, so the answer does
    /// not tell an attacker which part was wrong.
    #[error("authentication failed")]
    Unauthorized,
    /// The resource does not exist or the caller may not know it does.
    #[error("not found")]
    NotFound,
    /// The route exists, but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The body or a parameter is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but a value is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The link token is unknown, used or expired.
    #[error("the link token is unknown, used or expired")]
    LinkTokenInvalid,
    /// The public key is already registered.
    #[error("this public key is already registered to a device")]
    DeviceExists,
    /// Only a facilitator of the circle may do this.
    #[error("only a facilitator of this circle may {0}")]
    NotFacilitator(&'static str),
    /// A commit bundle's roster change breaks a roster rule.
    #[error(transparent)]
    Roster(#[from] RosterRule),
    /// An MLS blob breaks a framing rule.
    #[error(transparent)]
    Framing(#[from] crate::framing::FramingRule),
    /// The caller may not claim this device's KeyPackages.
    #[error(
        "KeyPackages may be claimed only for your own account's devices, or for devices named \
         in a pending join request of a circle you facilitate"
    )]
    ClaimNotAllowed,
    /// The commit or message is for an epoch the circle has left.
    #[error("the circle is at another epoch; sync and retry")]
    StaleEpoch {
        /// Where the circle is.
        current_epoch: u64,
    },
    /// A circle with this id exists already.
    #[error("a circle with this id exists already")]
    CircleExists,
    /// The snapshot changed since the version the write replaces.
    #[error("the snapshot changed; read it, rebuild, and write again")]
    SnapshotConflict {
        /// The version stored now.
        current_version: u64,
    },
    /// The invite is unknown, used up, revoked or expired.
    #[error("the invite is unknown, used up, revoked or expired")]
    InviteInvalid,
    /// The facilitator code is unknown, used or expired.
    #[error("the facilitator code is unknown, used or expired")]
    FacilitatorCodeInvalid,
    /// Only enrolled facilitators may open circles here.
    #[error(
        "on this server only facilitators the operator enrolled may open circles: \
         redeem a facilitator code first"
    )]
    NotEnrolled,
    /// The account holds as much of something as the server allows.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The device is on the roster already.
    #[error("already on this circle's roster")]
    AlreadyMember,
    /// The message id was used before with other content.
    #[error("this message id was used before with different content")]
    DuplicateMessageId,
    /// The body is over the configured limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// Too many requests from this client or for this device.
    #[error("too many requests; retry later")]
    RateLimited {
        /// Seconds until a request will be accepted again.
        retry_after_secs: u64,
    },
    /// The database cannot be reached for now: `503` with `Retry-After`.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// The disk the database writes to is full: `507` with `Retry-After`.
    #[error("the server's storage is full; nothing was accepted; try again later")]
    StorageFull,
    /// No video server is configured.
    #[error(
        "this server has no video server: set video.url, video.api_key and video.api_secret \
         (HEARTH_VIDEO__URL, HEARTH_VIDEO__API_KEY, HEARTH_VIDEO__API_SECRET)"
    )]
    VideoUnconfigured,
    /// The server does not send pushes of this kind.
    #[error("this server does not send {} pushes", .0.as_str())]
    PushUnconfigured(hearth_protocol::push::PushKind),
    /// A Web Push endpoint the server will not call.
    #[error("{0}")]
    PushEndpointRefused(crate::push::endpoint::EndpointError),
    /// Something failed that the log explains.
    #[error("internal error")]
    Internal,
    /// Storage failed.
    #[error("internal error")]
    Storage(#[source] StorageError),
    /// The random number generator failed.
    #[error("internal error")]
    Random(#[from] RandomError),
    /// Signing a token failed.
    #[error("internal error")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

impl ApiError {
    /// The stable code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Invalid(_) => ErrorCode::InvalidRequest,
            Self::LinkTokenInvalid => ErrorCode::LinkTokenInvalid,
            Self::DeviceExists => ErrorCode::DeviceExists,
            Self::NotFacilitator(_) => ErrorCode::NotFacilitator,
            Self::Roster(rule) => rule.code(),
            Self::Framing(rule) => rule.code(),
            Self::ClaimNotAllowed => ErrorCode::ClaimNotAllowed,
            Self::StaleEpoch { .. } => ErrorCode::StaleEpoch,
            Self::CircleExists => ErrorCode::CircleExists,
            Self::SnapshotConflict { .. } => ErrorCode::SnapshotConflict,
            Self::InviteInvalid => ErrorCode::InviteInvalid,
            Self::FacilitatorCodeInvalid => ErrorCode::FacilitatorCodeInvalid,
            Self::NotEnrolled => ErrorCode::NotEnrolled,
            Self::QuotaExceeded(_) => ErrorCode::QuotaExceeded,
            Self::AlreadyMember => ErrorCode::AlreadyMember,
            Self::DuplicateMessageId => ErrorCode::DuplicateMessageId,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable => ErrorCode::Unavailable,
            Self::StorageFull => ErrorCode::StorageFull,
            Self::VideoUnconfigured => ErrorCode::VideoUnconfigured,
            Self::PushUnconfigured(_) => ErrorCode::PushUnconfigured,
            Self::PushEndpointRefused(_) => ErrorCode::PushEndpointRefused,
            Self::Internal | Self::Storage(_) | Self::Random(_) | Self::Signing(_) => {
                ErrorCode::Internal
            }
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
            current_epoch: match self {
                Self::StaleEpoch { current_epoch } => Some(*current_epoch),
                _ => None,
            },
            current_version: match self {
                Self::SnapshotConflict { current_version } => Some(*current_version),
                _ => None,
            },
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(err: DeliveryError) -> Self {
        match err {
            DeliveryError::NotFound => Self::NotFound,
            DeliveryError::NotFacilitator(action) => Self::NotFacilitator(action),
            DeliveryError::Roster(rule) => Self::Roster(rule),
            DeliveryError::Framing(rule) => Self::Framing(rule),
            DeliveryError::Invalid(why) => Self::Invalid(why),
            DeliveryError::StaleEpoch { current_epoch } => Self::StaleEpoch { current_epoch },
            DeliveryError::DuplicateMessageId => Self::DuplicateMessageId,
            DeliveryError::TooLarge { limit } => Self::PayloadTooLarge { limit },
            DeliveryError::RateLimited { retry_after_secs } => {
                Self::RateLimited { retry_after_secs }
            }
            DeliveryError::Unavailable => Self::Unavailable,
            DeliveryError::Storage(err) => err.into(),
            DeliveryError::Random(err) => Self::Random(err),
        }
    }
}

impl From<TargetError> for ApiError {
    fn from(err: TargetError) -> Self {
        match err {
            TargetError::Unconfigured(kind) => Self::PushUnconfigured(kind),
            TargetError::EndpointRefused(why) => Self::PushEndpointRefused(why),
            TargetError::Invalid(why) => Self::Invalid(why.to_owned()),
            TargetError::Seal => Self::Internal,
            TargetError::Storage(err) => err.into(),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::DeviceExists => Self::DeviceExists,
            StorageError::LinkTokenInvalid => Self::LinkTokenInvalid,
            StorageError::CircleExists => Self::CircleExists,
            StorageError::AlreadyOnRoster => Self::AlreadyMember,
            // Not a bug: the disk is full, or the database is restarting or
            // unreachable. The client hears "try again later", and why.
            other if other.is_full() => {
                tracing::warn!(error = %other, "database storage full");
                Self::StorageFull
            }
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                Self::Unavailable
            }
            other => Self::Storage(other),
        }
    }
}

/// What `Retry-After` says when the database is unavailable, in seconds.
pub const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// What `Retry-After` says when the disk is full, in seconds: room is made
/// by an operator, not by waiting a moment.
pub const RETRY_FULL_SECS: u64 = 30;

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Storage(err) => tracing::error!(error = %err, "storage failed"),
            Self::Random(err) => tracing::error!(error = %err, "randomness failed"),
            Self::Signing(err) => tracing::error!(error = %err, "token signing failed"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            Self::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)));
            }
            Self::Unavailable => {
                response.insert_header((
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_UNAVAILABLE_SECS),
                ));
            }
            Self::StorageFull => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_FULL_SECS)));
            }
            Self::Unauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            _ => {}
        }
        response.json(self.body())
    }
}

/// A path parameter that does not parse names nothing that exists.
pub fn path_error(_err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound.into()
}

/// A query string that does not parse.
pub fn query_error(_err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest("the query string is malformed".into()).into()
}
