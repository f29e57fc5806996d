//! The outbox: what a member sends is in the client's store before anything
//! leaves, so an app killed mid-send loses nothing. A message is `pending`
//! until the server has it (then it moves to the history in the same
//! transaction), or `failed` with why (the app may retry or discard it).
//! Pending messages go out again — after a restart, a reconnect, the next
//! sync — in order per circle, with the same id and, once encrypted, the
//! same bytes: the server answers a repeat with the number it gave, so each
//! is in the circle exactly once.

use crate::messages::Message;
use crate::store::{Gone, OutboxRow};
use crate::sync::FollowUps;
use crate::{ATTEMPTS, Client, ClientError, Result, load, now};
use hearth_protocol::circles::SendMessage;
use hearth_protocol::content::{Content, Envelope};
use hearth_protocol::{CircleId, ErrorCode};

/// Where a message on its way out stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutgoingState {
    /// Not yet confirmed by the server; it goes out (again) on the next
    /// send, sync or reconnect.
    Pending,
    /// The server refused it, or the circle is gone; it stays until
    /// retried or discarded.
    Failed(String),
}

/// A message on its way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The id the server deduplicates by.
    pub message_id: uuid::Uuid,
    /// The circle.
    pub circle_id: CircleId,
    /// What was sent.
    pub envelope: Envelope,
    /// Where it stands.
    pub state: OutgoingState,
    /// Unix seconds the user sent it.
    pub created_at: i64,
}

impl From<OutboxRow> for Outgoing {
    fn from(row: OutboxRow) -> Self {
        Self {
            message_id: row.message_id,
            circle_id: row.circle,
            envelope: row.envelope,
            state: match row.failed {
                Some(why) => OutgoingState::Failed(why),
                None => OutgoingState::Pending,
            },
            created_at: row.created_at,
        }
    }
}

impl Client {
    /// Sends any content: it is queued in the store first, then sent —
    /// encrypted in the epoch this device has, in one request. When the
    /// circle has moved on (`stale_epoch`), it catches up and encrypts
    /// again. Messages queued earlier in the circle go first. Returns the
    /// message's sequence number. When the server cannot be reached the
    /// message stays pending (see [`Client::outbox`]) and the error says
    /// why; a refusal marks it failed.
    pub async fn send(&self, circle: &CircleId, content: Content) -> Result<u64> {
        let envelope = Envelope::new(content);
        let message_id = uuid::Uuid::new_v4();
        let _one_sender = self.sending.lock().await;
        let circle_id = circle.clone();
        self.with(move |s| {
            // Not queued for a circle this device is not in.
            load(s, &circle_id)?;
            s.store.enqueue(&circle_id, message_id, &envelope, now())
        })
        .await?;
        let (outcomes, follow_ups) = self.flush_circle(circle).await?;
        self.drive(follow_ups).await?;
        outcomes
            .into_iter()
            .find(|(id, _)| *id == message_id)
            .map(|(_, outcome)| outcome)
            .unwrap_or(Err(ClientError::Unexpected(
                "a queued message was not sent",
            )))
    }

    /// The messages on their way out (pending and failed), oldest first.
    pub async fn outbox(&self) -> Result<Vec<Outgoing>> {
        self.with(|s| {
            Ok(s.store
                .outbox(None)?
                .into_iter()
                .map(Outgoing::from)
                .collect())
        })
        .await
    }

    /// Sends a failed message again (encrypted afresh, with its id).
    /// Returns its sequence number.
    pub async fn retry_outgoing(&self, message_id: uuid::Uuid) -> Result<u64> {
        let _one_sender = self.sending.lock().await;
        let row = self
            .with(move |s| {
                s.store.retry(message_id)?;
                s.store.outgoing(message_id)
            })
            .await?
            .ok_or(ClientError::UnknownMessage)?;
        let (outcomes, follow_ups) = self.flush_circle(&row.circle).await?;
        self.drive(follow_ups).await?;
        outcomes
            .into_iter()
            .find(|(id, _)| *id == message_id)
            .map(|(_, outcome)| outcome)
            .unwrap_or(Err(ClientError::UnknownMessage))
    }

    /// Drops a message from the outbox. A pending one may have reached the
    /// server already (its answer lost); it is then in the circle, though
    /// not in this device's history.
    pub async fn discard_outgoing(&self, message_id: uuid::Uuid) -> Result<()> {
        let _one_sender = self.sending.lock().await;
        if self.with(move |s| s.store.discard(message_id)).await? {
            Ok(())
        } else {
            Err(ClientError::UnknownMessage)
        }
    }

    /// Sends every pending message, circle by circle, in order. Returns how
    /// many went out. Stops at the first circle the server cannot be
    /// reached for (its messages stay pending).
    pub async fn flush_outbox(&self) -> Result<usize> {
        let _one_sender = self.sending.lock().await;
        let circles = self.with(|s| s.store.circles_pending()).await?;
        let mut sent = 0;
        let mut follow_ups = FollowUps::default();
        for circle in circles {
            let (outcomes, more) = self.flush_circle(&circle).await?;
            sent += outcomes.iter().filter(|(_, o)| o.is_ok()).count();
            follow_ups.extend(more);
        }
        self.drive(follow_ups).await?;
        Ok(sent)
    }

    /// Sends the circle's pending messages in order (the caller holds
    /// `sending`). A refusal fails that message and the next goes on; a
    /// failure to reach the server stops here with its error.
    async fn flush_circle(
        &self,
        circle: &CircleId,
    ) -> Result<(Vec<(uuid::Uuid, Result<u64>)>, FollowUps)> {
        let circle_id = circle.clone();
        let rows = self.with(move |s| s.store.outbox(Some(&circle_id))).await?;
        let mut outcomes = Vec::new();
        let mut follow_ups = FollowUps::default();
        for row in rows.into_iter().filter(|r| r.failed.is_none()) {
            let message_id = row.message_id;
            match self.send_row(row, &mut follow_ups).await {
                Ok(seq) => outcomes.push((message_id, Ok(seq))),
                Err(err) if err.is_retryable() => return Err(err),
                Err(err) => {
                    let why = err.to_string();
                    self.with(move |s| s.store.fail(message_id, &why)).await?;
                    outcomes.push((message_id, Err(err)));
                }
            }
        }
        Ok((outcomes, follow_ups))
    }

    /// Sends one queued message: with the bytes it was encrypted to, if it
    /// was, else encrypted now (and those bytes kept before they leave).
    async fn send_row(&self, row: OutboxRow, follow_ups: &mut FollowUps) -> Result<u64> {
        let (circle, message_id) = (row.circle.clone(), row.message_id);
        let mut encrypted = row.encrypted;
        for _ in 0..ATTEMPTS {
            let (epoch, ciphertext) = match encrypted.take() {
                Some(done) => done,
                None => {
                    follow_ups.extend(self.settle_if_pending(&circle).await?);
                    self.encrypt_queued(&circle, message_id, &row.envelope)
                        .await?
                }
            };
            let body = SendMessage {
                message_id,
                epoch,
                ciphertext: ciphertext.into(),
            };
            // Over the live socket when one is open; otherwise, or when it
            // gives no answer, over HTTP with the same bytes.
            let answer = match self.send_live(&circle, &body, &row.envelope).await {
                Some(answer) => answer,
                None => self.authorized().await?.send_message(&circle, &body).await,
            };
            match answer {
                Ok(accepted) => {
                    let (me, _) = self.signing_key().await?;
                    let sent = Message {
                        seq: accepted.seq,
                        sender: me,
                        envelope: row.envelope.clone(),
                        received_at: now(),
                    };
                    let circle_id = circle.clone();
                    self.with(move |s| {
                        s.store.sent(message_id, |store| {
                            crate::content::apply(store, &circle_id, sent)
                        })
                    })
                    .await?;
                    return Ok(accepted.seq);
                }
                Err(err) if err.code() == Some(ErrorCode::StaleEpoch) => {
                    follow_ups.extend(self.catch_up(&circle).await?.follow_ups);
                }
                // Off the roster: removed (or revoked) since the last sync.
                Err(err) if err.code() == Some(ErrorCode::NotFound) => {
                    self.gone(&circle, Gone::Removed).await?;
                    return Err(ClientError::RemovedFromCircle);
                }
                Err(err) => return Err(err),
            }
        }
        Err(ClientError::Contended)
    }

    /// Encrypts a queued message at the local epoch and keeps the bytes in
    /// the same step (so a resend after a crash sends exactly these).
    async fn encrypt_queued(
        &self,
        circle: &CircleId,
        message_id: uuid::Uuid,
        envelope: &Envelope,
    ) -> Result<(u64, Vec<u8>)> {
        let (_, signer) = self.signer().await?;
        let (circle_id, plain) = (circle.clone(), envelope.to_bytes());
        self.with(move |s| {
            let mut group = load(s, &circle_id)?;
            let message = hearth_protocol::mls::encrypt(&mut group, &s.provider, &signer, &plain)?;
            let epoch = group.epoch().as_u64();
            let ciphertext = hearth_protocol::mls::wire(&message)?.into_inner();
            s.store.encrypted(message_id, epoch, &ciphertext)?;
            Ok((epoch, ciphertext))
        })
        .await
    }
}
