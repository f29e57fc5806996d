//! `POST /v1/sync`: everything new for a device, across its circles, in one
//! request — what an app asks when it opens, when a push wakes it, or when
//! its live socket comes back.
//!
//! The request names each circle the client follows with the sequence number
//! it has processed up to. That number is also its acknowledgement: the
//! cursors a client sends are what it has processed, so no request of their
//! own is needed (`POST /v1/circles/{id}/ack` stays for clients that want it
//! at once). Welcomes the client has processed ride along the same way.
//!
//! The answer has, for every named circle the device is still on, the
//! entries after its cursor (a page at most, with `more` when a next request
//! should go on from `next_after`) and how many devices its roster holds —
//! and the same for each circle a waiting Welcome admits to, from the commit
//! that added the device, so a client joins and reads in one request;
//! the named circles the device is no longer on; the Welcomes waiting; the
//! device's KeyPackage pool; and the account's devices. From the last three
//! and the roster sizes a client sees the upkeep that is due — a pool below
//! its mark, a newly linked device of the account to add, a device that left
//! a roster whose MLS leaf is still in the group — without asking.

use crate::circles::{LogEntry, PendingWelcome};
use crate::key_packages::KeyPackageCount;
use crate::{CircleId, DeviceId};
use serde::{Deserialize, Serialize};

/// The most circles one request may name.
pub const MAX_CURSORS: usize = 500;

/// The most processed Welcomes one request may name.
pub const MAX_WELCOMES_DONE: usize = 100;

/// Where the client stands in one circle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncCursor {
    /// The circle.
    pub circle_id: CircleId,
    /// The last sequence number the client processed (0: none yet). It is
    /// read after, and acknowledged.
    pub after: u64,
}

/// `POST /v1/sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRequest {
    /// The circles the client follows (each at most once; at most 500).
    #[serde(default)]
    pub cursors: Vec<SyncCursor>,
    /// Welcomes the client has processed: deleted, as by
    /// `DELETE /v1/welcomes/{id}` (at most 100).
    #[serde(default, with = "crate::ids::uuid_text::list")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<uuid::Uuid>))]
    pub welcomes_done: Vec<uuid::Uuid>,
    /// At most this many entries per circle (default and maximum: the
    /// server's page size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// What is new in one circle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CircleSync {
    /// The circle.
    pub circle_id: CircleId,
    /// Entries after the cursor, in order (empty when nothing is new).
    pub entries: Vec<LogEntry>,
    /// The cursor to send next (the last entry's `seq`, or the request's
    /// `after` when empty).
    pub next_after: u64,
    /// Whether more entries follow: ask again from `next_after`.
    pub more: bool,
    /// How many devices the circle's roster holds. A group with more MLS
    /// members than this has leaves of departed devices to remove.
    pub roster_size: u32,
}

/// The answer to `POST /v1/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    /// Every named circle the device is on, in the order named; then each
    /// circle a waiting Welcome admits to (not named), read from the
    /// Welcome's `seq`.
    pub circles: Vec<CircleSync>,
    /// Named circles the device is not on (removed, revoked, or never was:
    /// the server does not say which).
    pub removed: Vec<CircleId>,
    /// Welcomes waiting for the device, oldest first.
    pub welcomes: Vec<PendingWelcome>,
    /// The device's KeyPackage pool.
    pub key_packages: KeyPackageCount,
    /// The account's devices (this one included).
    pub devices: Vec<DeviceId>,
    /// The name of the server's log generation. It changes only when the
    /// server was restored from a backup: messages sent shortly before the
    /// restore may be gone, and every circle's numbers jumped ahead (none
    /// is given twice). A client compares it with the one it last saw and
    /// tells its user. Empty from servers older than it.
    #[serde(default)]
    pub generation: String,
}
