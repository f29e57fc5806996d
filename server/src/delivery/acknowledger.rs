//! Group commit for acknowledgements ([`super::group_commit`]), as the
//! appender does for sends.
//!
//! Every device that receives a message says so; in a circle of twelve one
//! message brings eleven acknowledgements at nearly the same moment. They
//! queue here, from HTTP and WebSocket alike, and are written in batches,
//! each one transaction (`CircleStore::acknowledge`): a burst costs one
//! commit, not one each.

use super::DeliveryError;
use super::group_commit::{Batch, GroupCommit};
use crate::storage::{Acknowledgement, Storage, StorageError};
use async_trait::async_trait;
use std::sync::Arc;

/// The queue in front of the batch writer.
#[derive(Debug, Clone)]
pub struct Acknowledger(GroupCommit<Acknowledgements>);

impl Acknowledger {
    /// Starts the batch writer on the current runtime; it stops when every
    /// clone of the queue is gone.
    pub fn start(storage: Arc<dyn Storage>) -> Self {
        Self(GroupCommit::start(Acknowledgements { storage }))
    }

    /// Records one acknowledgement; returns once it is durable: whether the
    /// device was on the circle's roster.
    pub async fn acknowledge(&self, ack: Acknowledgement) -> Result<bool, DeliveryError> {
        metrics::counter!("hearth_acknowledgements_total").increment(1);
        self.0.submit(ack).await
    }
}

/// Acknowledgements written in batches.
struct Acknowledgements {
    storage: Arc<dyn Storage>,
}

impl std::fmt::Debug for Acknowledgements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acknowledgements").finish_non_exhaustive()
    }
}

#[async_trait]
impl Batch for Acknowledgements {
    type Item = Acknowledgement;
    type Outcome = bool;
    const TRANSACTIONS: &'static str = "hearth_acknowledgement_transactions_total";
    const BATCH_SIZES: &'static str = "hearth_acknowledgement_batch_size";
    const MAX_BATCH: usize = 512;

    async fn write(&self, acks: &[Acknowledgement]) -> Result<Vec<bool>, StorageError> {
        self.storage.acknowledge(acks).await
    }
}
