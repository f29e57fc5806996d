//! Why the delivery core refused: one variant per rule, so the HTTP and
//! WebSocket adapters map each to its stable code without looking inside.

use crate::crypto::RandomError;
use crate::framing::FramingRule;
use crate::storage::StorageError;
use hearth_protocol::ErrorCode;

/// Why a delivery operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No such circle, or the device is not on its roster (the two are never
    /// told apart).
    #[error("no such circle, or not on its roster")]
    NotFound,
    /// Only a facilitator of the circle may do this; the text completes
    /// "only a facilitator of this circle may ...".
    #[error("only a facilitator of this circle may {0}")]
    NotFacilitator(&'static str),
    /// A commit bundle's roster change breaks a roster rule.
    #[error(transparent)]
    Roster(#[from] RosterRule),
    /// An MLS blob breaks a framing rule.
    #[error(transparent)]
    Framing(#[from] FramingRule),
    /// Well-formed, but not acceptable (the text says why).
    #[error("{0}")]
    Invalid(String),
    /// The commit or message is for an epoch the circle has left.
    #[error("the circle is at epoch {current_epoch}")]
    StaleEpoch {
        /// Where the circle is.
        current_epoch: u64,
    },
    /// The message id was used before with other content.
    #[error("this message id was used before with different content")]
    DuplicateMessageId,
    /// A blob is over the configured limit.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The device sends faster than its rate.
    #[error("sending too fast")]
    RateLimited {
        /// Seconds until a send will be accepted again.
        retry_after_secs: u64,
    },
    /// The batch writer is gone (the server is stopping).
    #[error("the batch writer is not running")]
    Unavailable,
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The random number generator failed.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A roster rule a commit bundle breaks: each has its own stable code, so a
/// client can tell which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RosterRule {
    /// A device appears twice in the roster change.
    #[error("a device appears more than once in the roster change")]
    DuplicateDevice,
    /// An added device is on the roster already.
    #[error("an added device is already on the roster")]
    DeviceOnRoster,
    /// A removed device is not on the roster.
    #[error("a removed device is not on the roster")]
    DeviceNotOnRoster,
    /// An added device does not exist, or is revoked.
    #[error("an added device does not exist")]
    UnknownDevice,
    /// Devices are added without a Welcome.
    #[error("adding devices needs a Welcome")]
    WelcomeMissing,
    /// The join request the commit approves is not pending in this circle.
    #[error("no such join request in this circle")]
    UnknownJoinRequest,
    /// An approving commit adds no devices, or others than requested.
    #[error("an approving commit adds devices of the join request, and only those")]
    JoinRequestMismatch,
    /// The change would take the circle over its member limit.
    #[error("the circle would exceed its member limit")]
    CircleFull,
}

impl RosterRule {
    /// The rule's stable code.
    pub fn code(self) -> ErrorCode {
        match self {
            Self::DuplicateDevice => ErrorCode::DuplicateDevice,
            Self::DeviceOnRoster => ErrorCode::DeviceOnRoster,
            Self::DeviceNotOnRoster => ErrorCode::DeviceNotOnRoster,
            Self::UnknownDevice => ErrorCode::UnknownDevice,
            Self::WelcomeMissing => ErrorCode::WelcomeMissing,
            Self::UnknownJoinRequest => ErrorCode::UnknownJoinRequest,
            Self::JoinRequestMismatch => ErrorCode::JoinRequestMismatch,
            Self::CircleFull => ErrorCode::CircleFull,
        }
    }
}
