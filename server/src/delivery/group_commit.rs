//! Group commit, once for every batch writer of the delivery core (sends in
//! [`super::appender`], acknowledgements in [`super::acknowledger`]).
//!
//! Callers on every worker thread queue items; one task takes everything
//! queued (up to a limit), writes it in one transaction and only then
//! answers each caller: answered still means durable, but a batch costs one
//! commit and one fsync instead of one each. While a batch commits the next
//! one gathers, so the batch grows with the load and a lone item waits for
//! no one. A failed batch (a deadlock, a value the database refused) does not
//! fail every caller in it: each item goes again alone and gets its own
//! answer.

use super::DeliveryError;
use crate::storage::StorageError;
use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

/// What one batch writer writes.
#[async_trait]
pub trait Batch: Send + Sync + 'static {
    /// What callers queue.
    type Item: Send + 'static;
    /// What each learns once its item is written.
    type Outcome: Copy + Send + 'static;
    /// The counter of write transactions (`hearth_..._transactions_total`).
    const TRANSACTIONS: &'static str;
    /// The histogram of items per transaction (`hearth_..._batch_size`).
    const BATCH_SIZES: &'static str;
    /// The most items one transaction takes.
    const MAX_BATCH: usize;

    /// Writes `items` in one transaction: one outcome per item, in order.
    async fn write(&self, items: &[Self::Item]) -> Result<Vec<Self::Outcome>, StorageError>;

    /// An item is written and its caller answered (announcements go here).
    fn written(&self, _item: Self::Item, _outcome: Self::Outcome) {}
}

/// The queue in front of one batch writer.
#[derive(Debug)]
pub struct GroupCommit<B: Batch> {
    jobs: mpsc::Sender<Job<B>>,
}

impl<B: Batch> Clone for GroupCommit<B> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

#[derive(Debug)]
struct Job<B: Batch> {
    item: B::Item,
    answer: oneshot::Sender<Result<B::Outcome, StorageError>>,
}

impl<B: Batch> GroupCommit<B> {
    /// Starts the writer on the current runtime; it stops when every clone
    /// of the queue is gone.
    pub fn start(writer: B) -> Self {
        let (jobs, queue) = mpsc::channel(B::MAX_BATCH * 4);
        tokio::spawn(run(writer, queue));
        Self { jobs }
    }

    /// Queues one item; returns once it is durable (or refused).
    pub async fn submit(&self, item: B::Item) -> Result<B::Outcome, DeliveryError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { item, answer })
            .await
            .map_err(|_| DeliveryError::Unavailable)?;
        Ok(answered.await.map_err(|_| DeliveryError::Unavailable)??)
    }
}

async fn run<B: Batch>(writer: B, mut queue: mpsc::Receiver<Job<B>>) {
    let mut batch = Vec::with_capacity(B::MAX_BATCH);
    while queue.recv_many(&mut batch, B::MAX_BATCH).await > 0 {
        let (items, answers): (Vec<B::Item>, Vec<_>) =
            batch.drain(..).map(|job| (job.item, job.answer)).unzip();
        metrics::counter!(B::TRANSACTIONS).increment(1);
        #[allow(clippy::cast_precision_loss)] // at most MAX_BATCH
        metrics::histogram!(B::BATCH_SIZES).record(items.len() as f64);
        match writer.write(&items).await {
            Ok(outcomes) if outcomes.len() == items.len() => {
                for ((item, answer), outcome) in items.into_iter().zip(answers).zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                    writer.written(item, outcome);
                }
            }
            Ok(_) => {
                for answer in answers {
                    let _ = answer.send(Err(StorageError::Corrupt("a batch's outcomes")));
                }
            }
            Err(err) if items.len() > 1 => {
                tracing::warn!(error = %err, size = items.len(), "batch write failed; writing one by one");
                for (item, answer) in items.into_iter().zip(answers) {
                    metrics::counter!(B::TRANSACTIONS).increment(1);
                    let outcome =
                        writer
                            .write(std::slice::from_ref(&item))
                            .await
                            .and_then(|outcomes| {
                                outcomes
                                    .first()
                                    .copied()
                                    .ok_or(StorageError::Corrupt("a batch's outcome"))
                            });
                    let written = outcome.as_ref().ok().copied();
                    let _ = answer.send(outcome);
                    if let Some(outcome) = written {
                        writer.written(item, outcome);
                    }
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
