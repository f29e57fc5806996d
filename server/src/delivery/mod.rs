//! The delivery core: the rules of a circle's log under the routes. Commit
//! bundles and their roster checks ([`roster::decide`]), appending
//! application messages through the batch writer ([`appender`]), reading the
//! log, acknowledging through its own group-commit writer
//! ([`acknowledger`]); and telling whoever must hear of a change (this
//! node's sockets and the other nodes, sleeping phones, the video server).
//!
//! Everything here takes plain ids and protocol types and returns outcomes
//! or a [`DeliveryError`]; nothing here knows HTTP. The HTTP routes and the
//! WebSocket are adapters over it, and the unit tests reach it without
//! either.

pub mod acknowledger;
pub mod appender;
mod commit;
mod error;
mod group_commit;
mod log;
pub mod roster;
mod sync;

pub use acknowledger::Acknowledger;
pub use appender::Appender;
pub use error::{DeliveryError, RosterRule};
pub use log::Sent;

use crate::hub::{Event, Hub};
use crate::push::Push;
use crate::rate_limit::{RateLimiter, retry_after_secs};
use crate::sfu::Evictor;
use crate::storage::{CircleRecord, Storage, StorageError, WakeFor};
use hearth_protocol::circles::Role;
use hearth_protocol::{AccountId, CircleId, DeviceId};
use std::sync::Arc;

/// Who asks: a device and its account (from its access token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The device.
    pub device: DeviceId,
    /// Its account.
    pub account: AccountId,
}

/// The limits delivery applies, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest commit, Welcome, GroupInfo or message, in bytes.
    pub max_ciphertext_bytes: usize,
    /// The most log entries one read returns.
    pub page_size: u32,
    /// How many epochs behind a message may be encrypted and still be
    /// appended.
    pub epoch_window: i64,
}

/// The delivery core: storage, the batch writer, and who hears of changes.
#[derive(Debug)]
pub struct Delivery {
    storage: Arc<dyn Storage>,
    hub: Hub,
    appender: Appender,
    acknowledger: Acknowledger,
    push: Option<Arc<Push>>,
    evictor: Option<Evictor>,
    limits: Limits,
    sends: RateLimiter<DeviceId>,
    /// The log's generation (`Instance::generation`), told with every read.
    generation: String,
}

impl Delivery {
    /// The core over `storage`, starting its batch writer on the current
    /// runtime, reading the log of `generation`. How many epochs behind a message may be
    /// encrypted and still be appended. `push` and `evictor` when
    /// configured.
    pub fn start(
        storage: Arc<dyn Storage>,
        hub: Hub,
        push: Option<Arc<Push>>,
        evictor: Option<Evictor>,
        limits: Limits,
        sends: RateLimiter<DeviceId>,
        generation: String,
    ) -> Self {
        let appender = Appender::start(
            storage.clone(),
            hub.clone(),
            limits.epoch_window,
            push.clone(),
        );
        let acknowledger = Acknowledger::start(storage.clone());
        Self {
            storage,
            hub,
            appender,
            acknowledger,
            push,
            evictor,
            limits,
            sends,
            generation,
        }
    }

    /// The log's generation: a new one begins after a restore.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The circle, if `device` is on its roster; otherwise the same
    /// [`DeliveryError::NotFound`] as for a circle that does not exist.
    pub async fn membership(
        &self,
        circle: &CircleId,
        device: DeviceId,
    ) -> Result<CircleRecord, DeliveryError> {
        self.storage
            .circle(circle)
            .await?
            .filter(|c| c.member(device).is_some())
            .ok_or(DeliveryError::NotFound)
    }

    /// The circle, if `device` is one of its facilitators: not found to
    /// non-members, [`DeliveryError::NotFacilitator`] to members. `action`
    /// completes "only a facilitator of this circle may ...".
    pub async fn facilitated(
        &self,
        circle: &CircleId,
        device: DeviceId,
        action: &'static str,
    ) -> Result<CircleRecord, DeliveryError> {
        let record = self.membership(circle, device).await?;
        if record
            .member(device)
            .is_some_and(|m| m.role == Role::Facilitator)
        {
            Ok(record)
        } else {
            Err(DeliveryError::NotFacilitator(action))
        }
    }

    /// What `read` returns, if `device` is on the circle's roster after it
    /// ran. The roster is checked after the read, never before: each
    /// statement sees its own snapshot, so a check made first could pass a
    /// device that a commit then removes, and the read would hand it what
    /// was written for the circle after its removal.
    pub async fn read_as_member<T>(
        &self,
        circle: &CircleId,
        device: DeviceId,
        read: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, DeliveryError> {
        let value = read.await?;
        self.membership(circle, device).await?;
        Ok(value)
    }

    /// Wakes the sockets that care about `event`, on this node and (through
    /// the database) on every other.
    pub async fn publish(&self, event: Event) {
        if let Some(notice) = event.notice()
            && let Err(err) = self.storage.notify(&notice.encode()).await
        {
            tracing::warn!(error = %err, "could not notify other nodes of an event");
        }
        self.hub.publish(event);
    }

    /// Queues wakes for whoever `wake` names that has no live socket (after
    /// the caller's commit; nothing without push).
    pub fn wake(&self, wake: WakeFor) {
        if let Some(push) = &self.push {
            push.wake(wake);
        }
    }

    /// The circles a device is in, when a video server may have to drop it
    /// from their rooms (none asked for without one).
    pub async fn rooms_of(&self, device: DeviceId) -> Result<Vec<CircleId>, StorageError> {
        if self.evictor.is_none() {
            return Ok(Vec::new());
        }
        let circles = self.storage.device_circles(device).await?;
        Ok(circles.into_iter().map(|c| c.id).collect())
    }

    /// The devices left the circle's roster: the video server drops them
    /// from its room (nothing without a video server).
    pub fn evict(&self, circle: &CircleId, devices: &[DeviceId]) {
        if let Some(evictor) = &self.evictor
            && !devices.is_empty()
        {
            evictor.evict(circle, devices);
        }
    }

    fn limit_sends(&self, device: &DeviceId) -> Result<(), DeliveryError> {
        self.sends
            .check(device)
            .map_err(|wait| DeliveryError::RateLimited {
                retry_after_secs: retry_after_secs(wait),
            })
    }
}

/// A blob within the limit, or [`DeliveryError::TooLarge`].
pub(crate) fn bounded(bytes: &[u8], limit: usize, what: &'static str) -> Result<(), DeliveryError> {
    if bytes.len() > limit {
        tracing::debug!(what, "oversized content refused");
        return Err(DeliveryError::TooLarge { limit });
    }
    Ok(())
}

/// A stored number (never negative) as the wire's unsigned one.
pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or_default()
}

/// A wire number as storage's signed one (saturating).
pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
