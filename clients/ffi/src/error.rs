//! The one error type apps see: a variant per thing an app does something
//! different about, and the server's stable code whenever the server said
//! no.

use hearth_client::ClientError;

/// Why an operation failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HearthError {
    /// The server refused. `code` is its stable machine-readable code
    /// (`stale_epoch`, `not_facilitator`, `invite_invalid`, ...): branch on
    /// it, never on `message`.
    #[error("the server answered {status}: {code}")]
    Server {
        /// The stable code.
        code: String,
        /// The HTTP status.
        status: u16,
        /// A sentence for people (`detail`: Kotlin's exceptions own
        /// `message`).
        detail: String,
    },
    /// The server could not be reached, or the connection broke. Try again
    /// later.
    #[error("the server is unreachable")]
    Unreachable,
    /// The circle kept changing while the operation retried, or another
    /// process on the same data directory (the app, or its notification
    /// extension) held it for longer than this one would wait; nothing was
    /// half done. Try again.
    #[error("busy; try again")]
    Busy,
    /// This data directory has no registered device yet: `register` first.
    #[error("no device is registered here")]
    NotRegistered,
    /// This device is not in that circle.
    #[error("this device is not in that circle")]
    UnknownCircle,
    /// This device was in that circle and is no longer: `removed` when a
    /// facilitator removed it (or it was revoked), otherwise it left. Its
    /// history stays readable.
    #[error("this device is no longer in that circle")]
    NoLongerInCircle {
        /// Removed rather than left.
        removed: bool,
    },
    /// Only a facilitator of the circle may do this.
    #[error("only a facilitator of this circle may do this")]
    NotFacilitator,
    /// The key does not open this data directory (or it was created
    /// without one): the app's key store lost or changed the key.
    #[error("the key does not open this data directory")]
    WrongKey,
    /// An argument does not parse: an id, an invite link, a push target.
    #[error("{detail}")]
    InvalidInput {
        /// What was wrong.
        detail: String,
    },
    /// The device's own storage failed (disk full, files removed).
    #[error("local storage failed: {detail}")]
    Storage {
        /// What failed.
        detail: String,
    },
    /// Something else failed; `message` says what, for a bug report.
    #[error("{detail}")]
    Internal {
        /// What failed.
        detail: String,
    },
}

impl From<ClientError> for HearthError {
    fn from(err: ClientError) -> Self {
        match err {
            ClientError::Api { status, body } => Self::Server {
                code: body.code.as_str().to_owned(),
                status,
                detail: body.message,
            },
            ClientError::Network(_) | ClientError::Stream(_) => Self::Unreachable,
            ClientError::Contended | ClientError::Busy => Self::Busy,
            ClientError::NotRegistered => Self::NotRegistered,
            ClientError::UnknownCircle => Self::UnknownCircle,
            ClientError::RemovedFromCircle => Self::NoLongerInCircle { removed: true },
            ClientError::LeftCircle => Self::NoLongerInCircle { removed: false },
            ClientError::NotFacilitator => Self::NotFacilitator,
            ClientError::WrongKey | ClientError::Locked | ClientError::NotEncrypted => {
                Self::WrongKey
            }
            ClientError::BadInviteLink => Self::InvalidInput {
                detail: "not a Hearth invite link".into(),
            },
            ClientError::UnknownJoinRequest => Self::InvalidInput {
                detail: "no such join request".into(),
            },
            ClientError::InvalidSchedule(why) => Self::InvalidInput { detail: why.into() },
            ClientError::InvalidCheckIn(why) => Self::InvalidInput { detail: why.into() },
            ClientError::NoSuchSession | ClientError::NoSuchCheckIn | ClientError::NotInCircle => {
                Self::InvalidInput {
                    detail: err.to_string(),
                }
            }
            ClientError::Store(_) | ClientError::Io(_) => Self::Storage {
                detail: err.to_string(),
            },
            other => Self::Internal {
                detail: chain(&other),
            },
        }
    }
}

/// The error and its sources, one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
