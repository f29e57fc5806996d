//! Messages: what a member says, encrypted in the circle's current epoch and
//! sent with an id the server deduplicates by, and the history they make.

use crate::sync::FollowUps;
use crate::{ATTEMPTS, Client, ClientError, Result, load, now};
use hearth_protocol::circles::{LogEntry, SendMessage};
use hearth_protocol::content::{Content, Envelope};
use hearth_protocol::{CircleId, DeviceId, ErrorCode};

/// A message of a circle's history: decrypted, with where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its sequence number in the circle.
    pub seq: u64,
    /// Who sent it.
    pub sender: DeviceId,
    /// The decrypted content.
    pub envelope: Envelope,
    /// Unix seconds the server received it.
    pub received_at: i64,
}

impl Message {
    /// A message as it arrived in a log entry.
    pub(crate) fn received(entry: &LogEntry, plaintext: &[u8]) -> Self {
        Self {
            seq: entry.seq,
            sender: entry.sender,
            envelope: Envelope::from_bytes(plaintext),
            received_at: entry.received_at,
        }
    }
}

impl Client {
    /// Sends a text message.
    pub async fn send_text(&self, circle: &CircleId, body: &str) -> Result<uuid::Uuid> {
        let id = uuid::Uuid::new_v4();
        let text = Content::Text {
            id,
            body: body.to_owned(),
        };
        self.send(circle, text).await?;
        Ok(id)
    }

    /// Encrypts and sends at the local epoch; catches up and retries on
    /// `stale_epoch`. Content that belongs in the history is stored there.
    /// Returns the sequence number and what catching up left to do.
    pub(crate) async fn send_now(
        &self,
        circle: &CircleId,
        content: Content,
    ) -> Result<(u64, FollowUps)> {
        let envelope = Envelope::new(content);
        let message_id = uuid::Uuid::new_v4();
        let mut follow_ups = FollowUps::default();
        for _ in 0..ATTEMPTS {
            follow_ups.extend(self.settle_if_pending(circle).await?);
            let (me, signer) = self.signer().await?;
            let (circle_id, plain) = (circle.clone(), envelope.to_bytes());
            let (epoch, ciphertext) = self
                .with(move |s| {
                    let mut group = load(s, &circle_id)?;
                    let message =
                        hearth_protocol::mls::encrypt(&mut group, &s.provider, &signer, &plain)?;
                    Ok((
                        group.epoch().as_u64(),
                        hearth_protocol::mls::wire(&message)?,
                    ))
                })
                .await?;
            let body = SendMessage {
                message_id,
                epoch,
                ciphertext,
            };
            match self.authorized().await?.send_message(circle, &body).await {
                Ok(accepted) => {
                    let sent = Message {
                        seq: accepted.seq,
                        sender: me,
                        envelope,
                        received_at: now(),
                    };
                    let circle_id = circle.clone();
                    self.with(move |s| crate::content::apply(s.store, &circle_id, sent))
                        .await?;
                    return Ok((accepted.seq, follow_ups));
                }
                Err(err) if err.code() == Some(ErrorCode::StaleEpoch) => {
                    follow_ups.extend(self.catch_up(circle).await?.follow_ups);
                }
                // Off the roster: removed (or revoked) since the last sync.
                Err(err) if err.code() == Some(ErrorCode::NotFound) => {
                    self.gone(circle, crate::store::Gone::Removed).await?;
                    return Err(ClientError::RemovedFromCircle);
                }
                Err(err) => return Err(err),
            }
        }
        Err(ClientError::Contended)
    }

    /// The circle's stored history, oldest first.
    pub async fn history(&self, circle: &CircleId) -> Result<Vec<Message>> {
        let circle = circle.clone();
        self.with(move |s| s.store.history(&circle)).await
    }

    /// The circle's stored history after `seq`, oldest first: what a view
    /// that has shown up to `seq` shows next, whichever process (the app, or
    /// its notification extension) decrypted it.
    pub async fn history_after(&self, circle: &CircleId, seq: u64) -> Result<Vec<Message>> {
        let circle = circle.clone();
        self.with(move |s| s.store.history_between(&circle, seq, u64::MAX))
            .await
    }
}
