//! Group commit for application messages.
//!
//! Sends from every worker thread (HTTP and WebSocket alike) queue here. One
//! task takes everything queued, appends it in one transaction
//! (`CircleStore::append_messages`) and only then answers each sender:
//! acknowledged still means durable, but a batch of sends costs one commit
//! and one fsync instead of one each. While a batch commits, the next one
//! gathers, so the batch grows with the load and a lone send waits for no
//! one.
//!
//! The committed messages then reach this node's live sockets as ready-made
//! frames ([`Event::Appended`]), encoded once; the other nodes learn which
//! numbers are new from a notification sent inside the same transaction.

use super::DeliveryError;
use crate::hub::{Appended, Event, Hub};
use crate::push::Push;
use crate::storage::{AppendOutcome, NewMessage, Storage, StorageError, WakeFor};
use hearth_protocol::circles::{EntryKind, LogEntry};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most messages one transaction takes.
const MAX_BATCH: usize = 256;

/// The queue in front of the batch writer.
#[derive(Debug, Clone)]
pub struct Appender {
    jobs: mpsc::Sender<Job>,
}

#[derive(Debug)]
struct Job {
    message: NewMessage,
    answer: oneshot::Sender<Result<AppendOutcome, StorageError>>,
}

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
        let (jobs, queue) = mpsc::channel(MAX_BATCH * 4);
        let announcer = Announcer { hub, push };
        tokio::spawn(run(storage, announcer, epoch_window, queue));
        Self { jobs }
    }

    /// Appends one message; returns once it is durable (or refused).
    pub async fn append(&self, message: NewMessage) -> Result<AppendOutcome, DeliveryError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { message, answer })
            .await
            .map_err(|_| DeliveryError::Unavailable)?;
        answered
            .await
            .map_err(|_| DeliveryError::Unavailable)?
            .map_err(DeliveryError::from)
    }
}

async fn run(
    storage: Arc<dyn Storage>,
    hub: Announcer,
    epoch_window: i64,
    mut queue: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (messages, answers): (Vec<NewMessage>, Vec<_>) =
            batch.drain(..).map(|job| (job.message, job.answer)).unzip();
        metrics::counter!("hearth_append_transactions_total").increment(1);
        match storage.append_messages(&messages, epoch_window).await {
            Ok(outcomes) => {
                for ((message, answer), outcome) in messages.into_iter().zip(answers).zip(outcomes)
                {
                    let _ = answer.send(Ok(outcome));
                    announce(&hub, message, outcome);
                }
            }
            // One failed transaction must not fail every sender in it (a
            // deadlock, a value the database refused): each goes again
            // alone, and gets its own answer.
            Err(err) if messages.len() > 1 => {
                tracing::warn!(error = %err, size = messages.len(), "batch append failed; appending one by one");
                for (message, answer) in messages.into_iter().zip(answers) {
                    metrics::counter!("hearth_append_transactions_total").increment(1);
                    let outcome = storage
                        .append_messages(std::slice::from_ref(&message), epoch_window)
                        .await
                        .and_then(|mut outcomes| {
                            outcomes
                                .pop()
                                .ok_or(StorageError::Corrupt("append outcome"))
                        });
                    let accepted = outcome.as_ref().ok().copied();
                    let _ = answer.send(outcome);
                    if let Some(outcome) = accepted {
                        announce(&hub, message, outcome);
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
