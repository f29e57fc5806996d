//! The log: appending application messages, reading pages after a cursor,
//! acknowledging.

use super::{Delivery, DeliveryError, bounded, signed, unsigned};
use crate::crypto;
use crate::framing;
use crate::storage::{Acknowledgement, AppendOutcome, LogRecord, NewMessage};
use hearth_protocol::circles::{Accepted, LogPage, SendMessage};
use hearth_protocol::{CircleId, DeviceId};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Appended now.
    New(Accepted),
    /// Appended earlier, with the same id and bytes: the original answer.
    Repeated(Accepted),
}

impl Delivery {
    /// Appends an application message from `sender` (HTTP and WebSocket
    /// alike): checked for size, framing and the sender's rate, durable when
    /// this returns. Resending the same `message_id` with the same bytes
    /// answers the original number.
    pub async fn append(
        &self,
        sender: DeviceId,
        circle: &CircleId,
        body: SendMessage,
    ) -> Result<Sent, DeliveryError> {
        bounded(
            body.ciphertext.as_slice(),
            self.limits.max_ciphertext_bytes,
            "ciphertext",
        )?;
        framing::application(body.ciphertext.as_slice(), circle, body.epoch)?;
        self.limit_sends(&sender)?;
        let message = NewMessage {
            circle: circle.clone(),
            sender,
            message_id: body.message_id,
            epoch: signed(body.epoch),
            digest: crypto::sha256(body.ciphertext.as_slice()),
            ciphertext: body.ciphertext.into_inner(),
            now: crate::now(),
        };
        let accepted = |seq, epoch| Accepted {
            seq: unsigned(seq),
            epoch: unsigned(epoch),
        };
        match self.appender.append(message).await? {
            AppendOutcome::Accepted { seq, epoch } => Ok(Sent::New(accepted(seq, epoch))),
            AppendOutcome::Repeated { seq, epoch } => Ok(Sent::Repeated(accepted(seq, epoch))),
            AppendOutcome::Conflict => Err(DeliveryError::DuplicateMessageId),
            AppendOutcome::Stale { current_epoch } => Err(DeliveryError::StaleEpoch {
                current_epoch: unsigned(current_epoch),
            }),
            AppendOutcome::NotMember => Err(DeliveryError::NotFound),
        }
    }

    /// A page of the circle's log after `after`, as `device` may read it (only
    /// what came after it joined): at most `limit` entries (the page size
    /// when `None`, and never more), and whether more follow.
    pub async fn read(
        &self,
        device: DeviceId,
        circle: &CircleId,
        after: u64,
        limit: Option<u32>,
    ) -> Result<LogPage, DeliveryError> {
        let page = self.limits.page_size;
        let limit = limit.unwrap_or(page).clamp(1, page);
        // One more than asked tells whether more follow.
        let mut records = self
            .storage
            .read_log(circle, device, signed(after), i64::from(limit) + 1)
            .await?
            .ok_or(DeliveryError::NotFound)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = records.len() > limit;
        records.truncate(limit);
        let next_after = records.last().map_or(after, |r| unsigned(r.seq));
        Ok(LogPage {
            entries: records.into_iter().map(LogRecord::into_entry).collect(),
            next_after,
            more,
            generation: self.generation.clone(),
        })
    }

    /// Records that `device` processed the circle's log up to `seq` (folded
    /// with whatever other acknowledgements are queued into one write);
    /// entries every device on the roster has acknowledged are deleted.
    pub async fn acknowledge(
        &self,
        device: DeviceId,
        circle: &CircleId,
        seq: u64,
    ) -> Result<(), DeliveryError> {
        let ack = Acknowledgement {
            circle: circle.clone(),
            device,
            seq: signed(seq),
        };
        if self.acknowledger.acknowledge(ack).await? {
            Ok(())
        } else {
            Err(DeliveryError::NotFound)
        }
    }
}
