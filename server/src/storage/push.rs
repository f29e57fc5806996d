//! Push: each device's sealed target, the durable queue of wakes (one row per
//! device at most, so bursts coalesce), and which devices have a live socket
//! on which node (so no node wakes them).
//!
//! The storage layer never sees a target in the clear: the push module seals
//! it before it arrives and opens it after it leaves.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::{CircleId, DeviceId};

/// A device's stored target.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PushTargetRecord {
    /// The target, sealed under the configured key.
    pub sealed: Vec<u8>,
    /// Unix seconds it was registered.
    pub registered_at: i64,
    /// Unix seconds of the last wake the push service accepted.
    pub last_wake_at: Option<i64>,
    /// When the push service said the target is gone.
    pub dead_at: Option<i64>,
    /// Why (a `PushDeadReason` wire name).
    pub dead_reason: Option<String>,
}

impl std::fmt::Debug for PushTargetRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushTargetRecord")
            .field("registered_at", &self.registered_at)
            .field("dead_at", &self.dead_at)
            .finish_non_exhaustive()
    }
}

/// Who something new is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WakeFor {
    /// Every device on the circle's roster but `except` (a log entry: the
    /// sender has it).
    Circle {
        /// The circle.
        circle: CircleId,
        /// The device that caused it.
        except: Option<DeviceId>,
    },
    /// The circle's facilitators (a join request).
    Facilitators(CircleId),
    /// One device (a Welcome).
    Device(DeviceId),
}

/// A wake this node took to send.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimedWake {
    /// The device to wake.
    pub device_id: DeviceId,
    /// Tries so far, this one included.
    pub attempts: i64,
    /// Other wakes folded into this one.
    pub coalesced: i64,
    /// The device's sealed target.
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for ClaimedWake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedWake")
            .field("attempts", &self.attempts)
            .field("coalesced", &self.coalesced)
            .finish_non_exhaustive()
    }
}

/// What the push service said about a claimed wake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeOutcome {
    /// Accepted at `now`: the device's next wake waits until `next_due` if
    /// something came for it meanwhile.
    Sent {
        /// Unix seconds.
        now: i64,
        /// When a wake queued during the send may go.
        next_due: i64,
    },
    /// Try again at this time.
    Retry {
        /// Unix seconds.
        at: i64,
    },
    /// Given up on this wake; the target stays.
    Dropped,
    /// The target is gone: it is marked dead and never tried again.
    Gone {
        /// Unix seconds.
        now: i64,
        /// A `PushDeadReason` wire name.
        reason: &'static str,
    },
}

/// The wake queue, as an operator watches it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WakeQueue {
    /// Wakes queued (due or not yet).
    pub queued: i64,
    /// Wakes due (or overdue), being sent or waiting to be.
    pub due: i64,
    /// When the longest-waiting due wake fell due (unix seconds).
    pub oldest_due_at: Option<i64>,
}

/// Push targets, the wake queue and socket presence.
#[async_trait]
pub trait PushStore {
    /// Stores the device's target, replacing (and reviving) any earlier one.
    async fn put_push_target(&self, device: DeviceId, sealed: &[u8], now: i64) -> Result<()>;

    /// The device's target.
    async fn push_target(&self, device: DeviceId) -> Result<Option<PushTargetRecord>>;

    /// Deletes the device's target (and its queued wake). False if it had
    /// none.
    async fn delete_push_target(&self, device: DeviceId) -> Result<bool>;

    /// The devices behind `wakes` that have a working target, each once.
    /// Presence is not read here: a wake of a device that looks connected
    /// is held when it falls due ([`PushStore::claim_wakes`]), so a node's
    /// stale word never swallows it.
    async fn wake_candidates(&self, wakes: &[WakeFor]) -> Result<Vec<DeviceId>>;

    /// Queues a wake for each `(device, due_at)` that has a working target;
    /// a device with one queued already keeps it (counted as coalesced).
    /// Returns how many were new.
    async fn queue_wakes(&self, wakes: &[(DeviceId, i64)]) -> Result<u64>;

    /// Deals with due wakes of devices that look connected (on a node alive
    /// at `now`): the first time, holds them until those nodes must have
    /// renewed their lives; when a held wake falls due again and a living
    /// node still vouches for a socket, drops it; otherwise it goes. Then
    /// postpones the wakes of devices woken less than `interval` seconds
    /// ago, and takes up to
    /// `limit` due wakes for this node until `lease_until`: no other node
    /// takes them before then.
    async fn claim_wakes(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        interval: i64,
    ) -> Result<Vec<ClaimedWake>>;

    /// Records what became of a claimed wake.
    async fn settle_wake(&self, device: DeviceId, outcome: &WakeOutcome) -> Result<()>;

    /// Gives back wakes this node claimed and will not send (it is
    /// stopping), each named with the lease it was claimed until: another
    /// node may take them at once. A wake whose claim has changed since
    /// (it lapsed and was taken again) is left alone. Returns how many were
    /// given back.
    async fn release_wakes(&self, claims: &[(DeviceId, i64)]) -> Result<u64>;

    /// The queue at `now`: how many wakes, how many due, and since when.
    async fn wake_queue(&self, now: i64) -> Result<WakeQueue>;

    /// When the next wake falls due (or its claim lapses), if any is queued.
    async fn next_wake_due(&self) -> Result<Option<i64>>;

    /// A device with a working target, chosen at random (for decoy wakes).
    async fn random_push_device(&self) -> Result<Option<DeviceId>>;

    /// Records the sockets of `node`, in one transaction: the node lives
    /// until `alive_until`; `present` devices have a live socket on it and
    /// `absent` ones none. With `replace`, the node's earlier rows go first
    /// (it lapsed, and others may have purged some of them).
    async fn record_presence(
        &self,
        node: &str,
        alive_until: i64,
        present: &[DeviceId],
        absent: &[DeviceId],
        replace: bool,
    ) -> Result<()>;

    /// Extends the life of `node` to `alive_until` if it is still alive at
    /// `now`; false when it lapsed or was never recorded (its sockets must
    /// be recorded again). Forgets the nodes dead by `now`, and their
    /// presence.
    async fn renew_node(&self, node: &str, now: i64, alive_until: i64) -> Result<bool>;

    /// A node stopping cleanly: its life and presence go at once.
    async fn forget_node(&self, node: &str) -> Result<()>;
}
