//! Group commit for acknowledgements, as the appender does for sends.
//!
//! Every device that receives a message says so; in a circle of twelve one
//! message brings eleven acknowledgements at nearly the same moment. They
//! queue here, from HTTP and WebSocket alike, and one task writes everything
//! queued in one transaction (`CircleStore::acknowledge`) and only then
//! answers each: a burst costs one commit, not one each. While a batch
//! commits the next gathers, so a lone acknowledgement waits for no one.

use super::DeliveryError;
use crate::storage::{Acknowledgement, Storage, StorageError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most acknowledgements one transaction takes.
const MAX_BATCH: usize = 512;

/// The queue in front of the batch writer.
#[derive(Debug, Clone)]
pub struct Acknowledger {
    jobs: mpsc::Sender<Job>,
}

#[derive(Debug)]
struct Job {
    ack: Acknowledgement,
    answer: oneshot::Sender<Result<bool, StorageError>>,
}

impl Acknowledger {
    /// Starts the batch writer on the current runtime; it stops when every
    /// clone of the queue is gone.
    pub fn start(storage: Arc<dyn Storage>) -> Self {
        let (jobs, queue) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(storage, queue));
        Self { jobs }
    }

    /// Records one acknowledgement; returns once it is durable: whether the
    /// device was on the circle's roster.
    pub async fn acknowledge(&self, ack: Acknowledgement) -> Result<bool, DeliveryError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { ack, answer })
            .await
            .map_err(|_| DeliveryError::Unavailable)?;
        Ok(answered.await.map_err(|_| DeliveryError::Unavailable)??)
    }
}

async fn run(storage: Arc<dyn Storage>, mut queue: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (acks, answers): (Vec<Acknowledgement>, Vec<_>) =
            batch.drain(..).map(|job| (job.ack, job.answer)).unzip();
        metrics::counter!("hearth_acknowledgements_total").increment(acks.len() as u64);
        metrics::counter!("hearth_acknowledgement_transactions_total").increment(1);
        match storage.acknowledge(&acks).await {
            Ok(outcomes) if outcomes.len() == answers.len() => {
                for (answer, outcome) in answers.into_iter().zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Ok(_) => {
                for answer in answers {
                    let _ = answer.send(Err(StorageError::Corrupt("acknowledgement answers")));
                }
            }
            // One failed transaction must not fail every device in it: each
            // goes again alone and gets its own answer.
            Err(err) if acks.len() > 1 => {
                tracing::warn!(error = %err, size = acks.len(), "batch acknowledgement failed; one by one");
                for (ack, answer) in acks.into_iter().zip(answers) {
                    metrics::counter!("hearth_acknowledgement_transactions_total").increment(1);
                    let outcome = storage
                        .acknowledge(std::slice::from_ref(&ack))
                        .await
                        .and_then(|o| {
                            o.first()
                                .copied()
                                .ok_or(StorageError::Corrupt("acknowledgement answer"))
                        });
                    let _ = answer.send(outcome);
                }
            }
            Err(err) => {
                if let Some(answer) = answers.into_iter().next() {
                    let _ = answer.send(Err(err));
                }
            }
        }
    }
}
