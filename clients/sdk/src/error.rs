//! The SDK's errors.

use hearth_protocol::ErrorBody;

/// What can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection failed.
    #[error("network: {0}")]
    Network(#[from] reqwest::Error),
    /// The server refused the request; `body.code` says why.
    #[error("the server answered {status}: {} ({})", body.code, body.message)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] rusqlite::Error),
    /// A local file or directory could not be used.
    #[error("local files: {0}")]
    Io(#[from] std::io::Error),
    /// An MLS operation failed.
    #[error("mls: {0}")]
    Mls(String),
    /// This client has not registered a device yet.
    #[error("no device registered in this data directory")]
    NotRegistered,
    /// This client has no such circle.
    #[error("this device is not in that circle")]
    UnknownCircle,
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
    /// A background task failed.
    #[error("a background task failed")]
    Task,
}

impl ClientError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<hearth_protocol::ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }

    pub(crate) fn mls(err: impl std::fmt::Debug) -> Self {
        Self::Mls(format!("{err:?}"))
    }
}

/// Shorthand for SDK results.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
