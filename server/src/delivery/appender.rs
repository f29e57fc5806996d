//! Group commit for application messages ([`super::group_commit`]).
//!
//! Sends from every worker thread (HTTP and WebSocket alike) queue here and
//! are appended in batches, each in one transaction
//! (`CircleStore::append_messages`); a sender is answered once its message is
//! durable.
//!
//! The committed messages then reach this node's live sockets as ready-made
//! frames ([`Event::Appended`]), encoded once; the other nodes learn which
//! numbers are new from a notification sent inside the same transaction.

use super::DeliveryError;
use super::group_commit::{Batch, GroupCommit};
use crate::hub::{Appended, Event, Hub};
use crate::push::Push;
use crate::storage::{AppendOutcome, NewMessage, Storage, StorageError, WakeFor};
use async_trait::async_trait;
use hearth_protocol::circles::{EntryKind, LogEntry};
use std::sync::Arc;

/// The queue in front of the batch writer.
#[derive(Debug, Clone)]
pub struct Appender(GroupCommit<Appends>);

impl Appender {
    /// Starts the batch writer on the current runtime. It stops when every
    /// clone of the returned queue is gone.
    /// Accepted messages also queue wakes through `push`, when given.
    pub fn start(
        storage: Arc<dyn Storage>,
        hub: Hub,
        epoch_window: i64,
        push: Option<Arc<Push>>,
    ) -> Self {
        Self(GroupCommit::start(Appends {
            storage,
            epoch_window,
            announcer: Announcer { hub, push },
        }))
    }

    /// Appends one message; returns once it is durable (or refused).
    pub async fn append(&self, message: NewMessage) -> Result<AppendOutcome, DeliveryError> {
        self.0.submit(message).await
    }
}

/// Messages appended in batches, announced once committed.
struct Appends {
    storage: Arc<dyn Storage>,
    epoch_window: i64,
    announcer: Announcer,
}

impl std::fmt::Debug for Appends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appends").finish_non_exhaustive()
    }
}

#[async_trait]
impl Batch for Appends {
    type Item = NewMessage;
    type Outcome = AppendOutcome;
    const TRANSACTIONS: &'static str = "hearth_append_transactions_total";
    const BATCH_SIZES: &'static str = "hearth_append_batch_size";
    const MAX_BATCH: usize = 256;

    async fn write(&self, items: &[NewMessage]) -> Result<Vec<AppendOutcome>, StorageError> {
        self.storage.append_messages(items, self.epoch_window).await
    }

    fn written(&self, message: NewMessage, outcome: AppendOutcome) {
        announce(&self.announcer, message, outcome);
    }
}

/// Who hears of a committed message: this node's sockets, and the devices
/// push wakes.
struct Announcer {
    hub: Hub,
    push: Option<Arc<Push>>,
}

/// Hands a newly committed message to this node's sockets as a frame, and
/// queues wakes for the circle's devices that have no live socket.
fn announce(announcer: &Announcer, message: NewMessage, outcome: AppendOutcome) {
    let AppendOutcome::Accepted { seq, .. } = outcome else {
        return;
    };
    if let Some(push) = &announcer.push {
        push.wake(WakeFor::Circle {
            circle: message.circle.clone(),
            except: Some(message.sender),
        });
    }
    let hub = &announcer.hub;
    // No socket here follows the circle: nothing to encode a frame for.
    if !hub.followed(&message.circle) {
        return;
    }
    let entry = LogEntry {
        seq: u64::try_from(seq).unwrap_or_default(),
        epoch: u64::try_from(message.epoch).unwrap_or_default(),
        kind: EntryKind::Application,
        sender: message.sender,
        ciphertext: message.ciphertext.into(),
        received_at: message.now,
    };
    match Appended::new(message.circle.clone(), entry) {
        Ok(appended) => hub.publish(Event::Appended(Arc::new(appended))),
        // Cannot happen for these types; the sockets still read the log.
        Err(_) => hub.publish(Event::Circle(message.circle)),
    }
}
