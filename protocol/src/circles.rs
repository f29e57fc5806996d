//! Circles (MLS groups) and their ordered log of ciphertext.
//!
//! The server keeps, per circle: the current epoch, a roster of device ids
//! with roles (a declared access list; members verify real membership inside
//! MLS), a policy, the latest GroupInfo for rejoining, and a log in which
//! every entry — a commit or an application message, both MLS ciphertext —
//! gets the next gap-free sequence number.

use crate::{Base64Bytes, CircleId, DeviceId};
use serde::{Deserialize, Serialize};

/// Largest ciphertext of one message, by default.
pub const DEFAULT_MAX_CIPHERTEXT: usize = 64 * 1024;

/// The most epochs behind the circle's current one a server may be
/// configured to accept a message in; clients keep this many past epochs'
/// secrets (messages of the epoch before a commit are read after it).
pub const EPOCH_WINDOW: u64 = 5;

/// How many epochs behind the current one a message is accepted in, by
/// default: none. A message in an epoch the circle has left is readable by
/// a device removed since and unreadable by one added since; the sender is
/// told `stale_epoch` and encrypts again.
pub const DEFAULT_EPOCH_WINDOW: u64 = 0;

/// A device's role in a circle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the circle: may add and remove others.
    Facilitator,
    /// Takes part; may leave.
    Member,
}

/// `POST /v1/circles`: register a new MLS group as a circle. The creating
/// device becomes its facilitator at epoch 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateCircle {
    /// The MLS group id.
    pub circle_id: CircleId,
    /// Members besides facilitators (default 12; the server has an upper bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_members: Option<u32>,
    /// Seconds a log entry is kept at most (default 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_secs: Option<u64>,
    /// The group's GroupInfo at epoch 0, for rejoining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_info: Option<Base64Bytes>,
}

/// One device on a roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RosterEntry {
    /// The device.
    pub device_id: DeviceId,
    /// Its role.
    pub role: Role,
}

/// A circle as its members see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Circle {
    /// The MLS group id.
    pub circle_id: CircleId,
    /// The current epoch.
    pub epoch: u64,
    /// The sequence number of the newest log entry (0 when empty).
    pub last_seq: u64,
    /// Members besides facilitators.
    pub max_members: u32,
    /// Seconds a log entry is kept at most.
    pub retention_secs: u64,
    /// Who is in it.
    pub roster: Vec<RosterEntry>,
}

/// `GET /v1/circles`: the caller's circles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CircleList {
    /// The circles whose roster holds the calling device.
    pub circles: Vec<Circle>,
}

/// `POST /v1/circles/{circle_id}/commits`: a commit with everything that must
/// take effect with it, accepted only at the circle's current epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommitBundle {
    /// The epoch the commit was made in (the circle's current epoch).
    pub epoch: u64,
    /// The commit, as an MLS message (PrivateMessage, or PublicMessage for an
    /// external commit).
    pub commit: Base64Bytes,
    /// The Welcome for the added devices; required when `added` is not empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welcome: Option<Base64Bytes>,
    /// The GroupInfo of the new epoch, kept for rejoining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_info: Option<Base64Bytes>,
    /// Devices the commit adds (facilitators only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<DeviceId>,
    /// Devices the commit removes (facilitators, or a device removing itself).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<DeviceId>,
    /// The join request this commit approves; consumed with the commit. Every
    /// added device must be one of the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "crate::ids::uuid_text::option")]
    pub join_request_id: Option<uuid::Uuid>,
}

/// The answer to an accepted commit or message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// The entry's sequence number in the circle's log.
    pub seq: u64,
    /// The circle's epoch after the entry.
    pub epoch: u64,
}

/// `POST /v1/circles/{circle_id}/messages`: an MLS application message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendMessage {
    /// A client-chosen id: resending the same id with the same bytes answers
    /// with the original sequence number.
    #[serde(with = "crate::ids::uuid_text")]
    pub message_id: uuid::Uuid,
    /// The epoch the message was encrypted in.
    pub epoch: u64,
    /// The MLS PrivateMessage.
    pub ciphertext: Base64Bytes,
}

/// What a log entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An application message.
    Application,
    /// A commit (handshake).
    Commit,
}

/// One entry of a circle's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogEntry {
    /// Gap-free, strictly increasing per circle.
    pub seq: u64,
    /// The epoch it was sent in.
    pub epoch: u64,
    /// Commit or application message.
    pub kind: EntryKind,
    /// The sending device.
    pub sender: DeviceId,
    /// The MLS message.
    pub ciphertext: Base64Bytes,
    /// Unix seconds when the server accepted it.
    pub received_at: i64,
}

/// `GET /v1/circles/{circle_id}/messages?after=N&limit=M`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogPage {
    /// Entries after the cursor, in order.
    pub entries: Vec<LogEntry>,
    /// The cursor for the next page (the last entry's `seq`, or the request's
    /// `after` when empty).
    pub next_after: u64,
    /// Whether more entries follow.
    pub more: bool,
    /// The server's log generation (see `SyncResponse::generation`).
    #[serde(default)]
    pub generation: String,
}

/// `POST /v1/circles/{circle_id}/ack`: everything up to `seq` is processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ack {
    /// The highest sequence number processed.
    pub seq: u64,
}

/// A Welcome waiting for the calling device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PendingWelcome {
    /// Acknowledge with `DELETE /v1/welcomes/{welcome_id}`.
    #[serde(with = "crate::ids::uuid_text")]
    pub welcome_id: uuid::Uuid,
    /// The circle it admits to.
    pub circle_id: CircleId,
    /// The sequence number of the commit that added the device; its log
    /// starts after this.
    pub seq: u64,
    /// The epoch the Welcome admits to.
    pub epoch: u64,
    /// The MLS Welcome message.
    pub welcome: Base64Bytes,
}

/// `GET /v1/welcomes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WelcomeList {
    /// Oldest first.
    pub welcomes: Vec<PendingWelcome>,
}

/// `GET /v1/circles/{circle_id}/group-info`: for rejoining by external commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupInfo {
    /// The epoch the circle is in.
    pub epoch: u64,
    /// The latest GroupInfo posted (it may be of an earlier epoch if the last
    /// commit did not carry one).
    pub group_info: Base64Bytes,
}

/// `PUT /v1/circles/{circle_id}/snapshot`: replace the circle's schedule
/// snapshot (facilitators). Accepted only if `version` is the version stored
/// now (0 when there is none); the new one is `version + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutSnapshot {
    /// The version this one replaces (0 for the first).
    pub version: u64,
    /// An MLS application message at the current epoch, padded.
    pub snapshot: Base64Bytes,
}

/// `GET /v1/circles/{circle_id}/snapshot`: the circle's schedule snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Snapshot {
    /// Its version: 1 for the first, one more for each replacement.
    pub version: u64,
    /// The MLS application message.
    pub snapshot: Base64Bytes,
    /// Unix seconds it was written.
    pub updated_at: i64,
}

/// The answer to a snapshot written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotWritten {
    /// The version now stored.
    pub version: u64,
}

/// Longest introduction note accepted with a join request, in bytes.
pub const MAX_NOTE_BYTES: usize = 4096;

/// `POST /v1/circles/{circle_id}/invites`: mint an invite (facilitators).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateInvite {
    /// Seconds until it expires (default 7 days, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    /// How many people may redeem it (default 1, at most 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
}

/// A freshly minted invite. The token is shown this once; the server keeps
/// only its hash. Share it out of band (a link or a QR code).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    /// For listing and revoking.
    #[serde(with = "crate::ids::uuid_text")]
    pub invite_id: uuid::Uuid,
    /// The secret to redeem.
    pub token: String,
    /// The circle it admits to.
    pub circle_id: CircleId,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many people may redeem it.
    pub max_uses: u32,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("expires_at", &self.expires_at)
            .field("max_uses", &self.max_uses)
            .finish_non_exhaustive()
    }
}

/// An invite as listed (without its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteInfo {
    /// Its id.
    #[serde(with = "crate::ids::uuid_text")]
    pub invite_id: uuid::Uuid,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many people may redeem it.
    pub max_uses: u32,
    /// How many did.
    pub uses: u32,
}

/// `GET /v1/circles/{circle_id}/invites`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteList {
    /// Oldest first.
    pub invites: Vec<InviteInfo>,
}

/// `POST /v1/invites/redeem`: ask to join the invite's circle.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedeemInvite {
    /// The invite's token.
    pub token: String,
    /// An introduction for the facilitator, encrypted by the client to a key
    /// that travels only in the invite link; the server stores the bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Base64Bytes>,
}

impl std::fmt::Debug for RedeemInvite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedeemInvite").finish_non_exhaustive()
    }
}

/// The answer to a redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequestCreated {
    /// The request, for the facilitator to approve or decline.
    #[serde(with = "crate::ids::uuid_text")]
    pub join_request_id: uuid::Uuid,
    /// The circle asked to join.
    pub circle_id: CircleId,
}

/// A pending join request, as the facilitator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequest {
    /// Its id: approve by posting a commit bundle with this
    /// `join_request_id`, or decline.
    #[serde(with = "crate::ids::uuid_text")]
    pub join_request_id: uuid::Uuid,
    /// The devices to add (every active device of the requester's account).
    pub device_ids: Vec<DeviceId>,
    /// The encrypted introduction note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Base64Bytes>,
    /// Unix seconds.
    pub created_at: i64,
}

/// `GET /v1/circles/{circle_id}/join-requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinRequestList {
    /// Oldest first.
    pub join_requests: Vec<JoinRequest>,
}
