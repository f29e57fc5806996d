//! The SDK's errors. Every variant keeps the error it came from as its
//! `source`, so an app can log the whole chain.

use hearth_protocol::mls::MlsError;
use hearth_protocol::{ErrorBody, ErrorCode};

/// What can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the connection failed.
    #[error("network")]
    Network(#[from] reqwest::Error),
    /// The live stream could not be opened or broke.
    #[error("live stream")]
    Stream(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// The server refused the request; `body.code` says why (see
    /// [`ClientError::code`]).
    #[error("the server answered {status}: {} ({})", body.code, body.message)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The local store failed.
    #[error("local store")]
    Store(#[from] rusqlite::Error),
    /// A local file or directory could not be used.
    #[error("local files")]
    Io(#[from] std::io::Error),
    /// Encoding or decoding JSON failed.
    #[error("JSON")]
    Json(#[from] serde_json::Error),
    /// An MLS operation failed, or MLS bytes did not decode.
    #[error("MLS")]
    Mls(#[from] MlsError),
    /// The circle kept changing while the operation retried (other members
    /// committed each time). Nothing was half done; retry later.
    #[error("the circle kept changing; try again")]
    Contended,
    /// This client has not registered a device yet.
    #[error("no device registered in this data directory")]
    NotRegistered,
    /// This client has no such circle.
    #[error("this device is not in that circle")]
    UnknownCircle,
    /// A facilitator removed this device from the circle (or the device was
    /// revoked): its history stays readable, nothing new arrives.
    #[error("this device was removed from that circle")]
    RemovedFromCircle,
    /// This device left the circle: its history stays readable.
    #[error("this device left that circle")]
    LeftCircle,
    /// Only a facilitator of the circle may do this (schedule, record
    /// attendance, set the agreement, prompt a check-in).
    #[error("only a facilitator of this circle may do this")]
    NotFacilitator,
    /// A schedule the schema does not allow (say, a session of 5 minutes or
    /// a time zone that is not an IANA name).
    #[error("not a valid schedule: {0}")]
    InvalidSchedule(&'static str),
    /// The circle's calendar, as this device knows it, has no such series,
    /// or the series no session on that date (sessions are named by the
    /// date the series first gave them).
    #[error("no such session")]
    NoSuchSession,
    /// The circle has no check-in prompt with that id.
    #[error("no such check-in prompt")]
    NoSuchCheckIn,
    /// A check-in reply the schema does not allow (a mood outside 1 to 5).
    #[error("not a valid check-in reply: {0}")]
    InvalidCheckIn(&'static str),
    /// A device named is not in the circle.
    #[error("that device is not in the circle")]
    NotInCircle,
    /// A media frame could not be encrypted or decrypted (SFrame).
    #[error("media frame")]
    Frame(#[source] Box<sframe::error::SframeError>),
    /// A media frame of an epoch whose keys this device does not hold (from
    /// before it joined, after it was removed, or past the grace period).
    #[error("no media key for this frame")]
    KeyUnavailable,
    /// None of the devices to add has a KeyPackage on the server (it never
    /// published any, or they are used up and it has no last resort): it
    /// cannot be added until it publishes more.
    #[error("none of the devices has a KeyPackage to be added with")]
    NoKeyPackages,
    /// No message with that id in the outbox.
    #[error("no such message in the outbox")]
    UnknownMessage,
    /// No pending join request with that id.
    #[error("no such join request")]
    UnknownJoinRequest,
    /// This device's MLS state no longer matches the circle's (it cannot
    /// process a commit); `sync` repairs it by rejoining.
    #[error("this device is out of step with the circle")]
    OutOfStep,
    /// An invite link does not parse.
    #[error("not a Hearth invite link")]
    BadInviteLink,
    /// Something the server or the store returned does not make sense.
    #[error("unexpected data: {0}")]
    Unexpected(&'static str),
    /// This data directory is encrypted: open it with its key.
    #[error("this data directory is encrypted; open it with its key")]
    Locked,
    /// The key does not open this data directory.
    #[error("the key does not open this data directory")]
    WrongKey,
    /// This data directory was created without a key; it cannot be opened
    /// with one.
    #[error("this data directory was created without a key")]
    NotEncrypted,
    /// Another process on the same data directory (the app, or its
    /// notification extension) held it for longer than this one would
    /// wait. Nothing was changed; try again (an extension shows its
    /// placeholder).
    #[error("another process is using this data directory")]
    Busy,
    /// A background task failed.
    #[error("a background task failed")]
    Task,
}

impl ClientError {
    /// The server's stable error code, when the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }

    /// Whether trying the same thing again later may succeed: network
    /// failures, contention, rate limits and server trouble.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network(_) | Self::Stream(_) | Self::Contended | Self::Busy => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for ClientError {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::Stream(Box::new(err))
    }
}

/// Shorthand for SDK results.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
