//! Circles: the roster, commits applied as an epoch compare-and-swap, the
//! ordered log of ciphertext, acknowledgements, GroupInfo and Welcomes.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::circles::{EntryKind, Role};
use hearth_protocol::{CircleId, DeviceId};
use uuid::Uuid;

/// A circle about to be created.
#[derive(Debug, Clone)]
pub struct NewCircle {
    /// The MLS group id.
    pub id: CircleId,
    /// Members besides facilitators.
    pub max_members: i64,
    /// Seconds log entries are kept at most.
    pub retention_secs: i64,
    /// GroupInfo at epoch 0.
    pub group_info: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A device on a circle's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRecord {
    /// The device.
    pub device_id: DeviceId,
    /// Its role.
    pub role: Role,
    /// The sequence number of the commit that added it (0 for the creator);
    /// it reads only entries after this.
    pub joined_seq: i64,
    /// The highest sequence number it acknowledged.
    pub acked_seq: i64,
}

/// A stored circle with its roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircleRecord {
    /// The MLS group id.
    pub id: CircleId,
    /// The current epoch.
    pub epoch: i64,
    /// The newest log entry's sequence number.
    pub last_seq: i64,
    /// Members besides facilitators.
    pub max_members: i64,
    /// Seconds log entries are kept at most.
    pub retention_secs: i64,
    /// Who is in it.
    pub roster: Vec<RosterRecord>,
}

impl CircleRecord {
    /// The roster entry of a device, if it is on the roster.
    pub fn member(&self, device_id: DeviceId) -> Option<&RosterRecord> {
        self.roster.iter().find(|r| r.device_id == device_id)
    }
}

/// A device's word that it processed a circle's log up to a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The circle.
    pub circle: CircleId,
    /// The device.
    pub device: DeviceId,
    /// The last entry it processed.
    pub seq: i64,
}

/// A device a commit adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedDevice {
    /// The device.
    pub device_id: DeviceId,
    /// Its role from now on.
    pub role: Role,
    /// The id of the Welcome queued for it.
    pub welcome_id: Uuid,
}

/// A commit bundle the caller has checked against the roster of `epoch`.
#[derive(Debug, Clone)]
pub struct NewCommit {
    /// The device posting it.
    pub sender: DeviceId,
    /// The epoch it was made in; accepted only if still current.
    pub epoch: i64,
    /// The commit message.
    pub commit: Vec<u8>,
    /// The Welcome, queued for each added device.
    pub welcome: Option<Vec<u8>>,
    /// The new GroupInfo.
    pub group_info: Option<Vec<u8>>,
    /// Devices joining, each with its role and the id of its queued Welcome.
    pub added: Vec<AddedDevice>,
    /// Devices leaving.
    pub removed: Vec<DeviceId>,
    /// The join request this commit approves, consumed with it.
    pub join_request: Option<Uuid>,
    /// Unix seconds.
    pub now: i64,
}

/// What became of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// Appended at `seq`; the circle is now at `epoch`.
    Accepted {
        /// The commit's sequence number.
        seq: i64,
        /// The new epoch.
        epoch: i64,
    },
    /// Another commit got there first.
    Stale {
        /// The circle's epoch now.
        current_epoch: i64,
    },
    /// No such circle.
    NoCircle,
}

/// An application message about to be appended.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The circle it is for.
    pub circle: CircleId,
    /// The sending device.
    pub sender: DeviceId,
    /// The client's id for it.
    pub message_id: Uuid,
    /// The epoch it was encrypted in.
    pub epoch: i64,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// SHA-256 of the ciphertext, to recognise an identical resend.
    pub digest: [u8; 32],
    /// Unix seconds.
    pub now: i64,
}

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Appended.
    Accepted {
        /// Its sequence number.
        seq: i64,
        /// The circle's epoch.
        epoch: i64,
    },
    /// The same id and bytes were accepted before, at `seq`.
    Repeated {
        /// The original sequence number.
        seq: i64,
        /// The circle's epoch.
        epoch: i64,
    },
    /// The same id was used before with other bytes.
    Conflict,
    /// The message's epoch is outside the accepted window.
    Stale {
        /// The circle's epoch now.
        current_epoch: i64,
    },
    /// The sender is not on the roster (or there is no such circle).
    NotMember,
}

/// A circle's latest GroupInfo and its epoch, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfoRecord {
    /// The circle's epoch now.
    pub epoch: i64,
    /// The latest GroupInfo `MLSMessage` posted (of an earlier epoch when
    /// the last commit carried none).
    pub group_info: Vec<u8>,
}

/// One stored log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number.
    pub seq: i64,
    /// Epoch sent in.
    pub epoch: i64,
    /// Commit or application message.
    pub kind: EntryKind,
    /// Sending device.
    pub sender: DeviceId,
    /// The MLS message.
    pub ciphertext: Vec<u8>,
    /// Unix seconds received.
    pub created_at: i64,
}

impl LogRecord {
    /// The entry as clients see it.
    pub fn into_entry(self) -> hearth_protocol::circles::LogEntry {
        hearth_protocol::circles::LogEntry {
            seq: u64::try_from(self.seq).unwrap_or_default(),
            epoch: u64::try_from(self.epoch).unwrap_or_default(),
            kind: self.kind,
            sender: self.sender,
            ciphertext: self.ciphertext.into(),
            received_at: self.created_at,
        }
    }
}

/// A Welcome waiting for a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WelcomeRecord {
    /// Its id.
    pub id: Uuid,
    /// The circle.
    pub circle_id: CircleId,
    /// The commit's sequence number.
    pub seq: i64,
    /// The epoch it admits to.
    pub epoch: i64,
    /// The Welcome message.
    pub data: Vec<u8>,
}

impl WelcomeRecord {
    /// The Welcome as its device sees it.
    pub fn into_pending(self) -> hearth_protocol::circles::PendingWelcome {
        hearth_protocol::circles::PendingWelcome {
            welcome_id: self.id,
            circle_id: self.circle_id,
            seq: u64::try_from(self.seq).unwrap_or_default(),
            epoch: u64::try_from(self.epoch).unwrap_or_default(),
            welcome: self.data.into(),
        }
    }
}

/// Circles, their log and their Welcomes.
#[async_trait]
pub trait CircleStore {
    /// Creates a circle at epoch 0 with the creator as facilitator.
    async fn create_circle(&self, circle: &NewCircle, creator: DeviceId) -> Result<()>;

    /// A circle and its roster.
    async fn circle(&self, id: &CircleId) -> Result<Option<CircleRecord>>;

    /// The circles whose roster holds the device.
    async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>>;

    /// Applies a commit bundle in one transaction if the circle is still at
    /// `commit.epoch`: appends the commit, bumps the epoch, applies the roster
    /// change, keeps the GroupInfo, queues the Welcomes.
    async fn apply_commit(&self, circle: &CircleId, commit: &NewCommit) -> Result<CommitOutcome>;

    /// Appends application messages in one transaction — group commit: one
    /// durable write for the lot — each judged as if it came alone:
    /// idempotent by message id, only from a device on the roster, only
    /// within `epoch_window` of the current epoch. Outcomes come back in the
    /// order given; a circle's messages take numbers in that order. The
    /// other server nodes hear of the circles that grew with the commit
    /// itself (PostgreSQL), not in a write of their own.
    async fn append_messages(
        &self,
        messages: &[NewMessage],
        epoch_window: i64,
    ) -> Result<Vec<AppendOutcome>>;

    /// Up to `limit` entries after `after` (and after the device joined).
    /// `None` when the device is not on the roster.
    async fn read_log(
        &self,
        circle: &CircleId,
        device_id: DeviceId,
        after: i64,
        limit: i64,
    ) -> Result<Option<Vec<LogRecord>>>;

    /// Up to `limit` entries after `after`, for whoever follows the circle on
    /// this node (the server's own read: no roster check).
    async fn log_entries(
        &self,
        circle: &CircleId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogRecord>>;

    /// Records each acknowledgement — a device processed its circle's log up
    /// to `seq` (at most the circle's last number counts) — then deletes the
    /// entries every device on each touched roster has acknowledged: one
    /// write transaction for the whole batch. One answer per
    /// acknowledgement, in order: false when the device is not on the
    /// circle's roster.
    async fn acknowledge(&self, acks: &[Acknowledgement]) -> Result<Vec<bool>>;

    /// The latest GroupInfo of a circle, with the circle's epoch as of the
    /// same read.
    async fn group_info(&self, circle: &CircleId) -> Result<Option<GroupInfoRecord>>;

    /// Welcomes waiting for the device, oldest first.
    async fn welcomes(&self, device_id: DeviceId) -> Result<Vec<WelcomeRecord>>;

    /// Acknowledges (deletes) a Welcome. False when there was none.
    async fn delete_welcome(&self, device_id: DeviceId, id: Uuid) -> Result<bool>;
}
