//! What this device is sending, from the moment the user sends it until the
//! server has it: table `outbox`. A row is `pending` (with, once encrypted,
//! the exact bytes and epoch it goes out with, so a resend after a crash is
//! the same request) or `failed` (with why); it leaves the table in the same
//! transaction that puts the sent message in the history.

use super::{Store, bytes, corrupt};
use crate::error::Result;
use crate::messages::Message;
use hearth_protocol::CircleId;
use hearth_protocol::content::Envelope;

pub(super) const OUTBOX_5: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    circle_id  BLOB    NOT NULL,
    message_id TEXT    NOT NULL UNIQUE,
    envelope   BLOB    NOT NULL,
    epoch      INTEGER,
    ciphertext BLOB,
    failed     TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_circle ON outbox (circle_id, id);
";

/// One message on its way out, as stored.
#[derive(Debug, Clone)]
pub(crate) struct OutboxRow {
    /// The circle.
    pub circle: CircleId,
    /// The id the server deduplicates by.
    pub message_id: uuid::Uuid,
    /// What the user sent.
    pub envelope: Envelope,
    /// The epoch and bytes it was encrypted to, once it was.
    pub encrypted: Option<(u64, Vec<u8>)>,
    /// Why it failed, when it did.
    pub failed: Option<String>,
    /// Unix seconds it was sent by the user.
    pub created_at: i64,
}

fn place(message_id: &uuid::Uuid) -> Vec<u8> {
    [b"outbox/".as_slice(), message_id.as_bytes()].concat()
}

impl Store {
    /// Queues a message, pending.
    pub fn enqueue(
        &self,
        circle: &CircleId,
        message_id: uuid::Uuid,
        envelope: &Envelope,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO outbox (circle_id, message_id, envelope, created_at) VALUES (?1, ?2, ?3, ?4)",
            (
                circle.as_bytes(),
                message_id.to_string(),
                self.seal(&[&place(&message_id)], &envelope.to_bytes())?,
                now,
            ),
        )?;
        Ok(())
    }

    /// Notes the bytes a pending message goes out with.
    pub fn encrypted(&self, message_id: uuid::Uuid, epoch: u64, ciphertext: &[u8]) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET epoch = ?2, ciphertext = ?3 WHERE message_id = ?1",
            (
                message_id.to_string(),
                i64::try_from(epoch).unwrap_or(i64::MAX),
                ciphertext,
            ),
        )?;
        Ok(())
    }

    /// The server has it: the row goes and the message is applied (into the
    /// history, the names or the calendar), in the step's transaction.
    pub fn sent(
        &self,
        message_id: uuid::Uuid,
        apply: impl FnOnce(&Store) -> Result<Option<Message>>,
    ) -> Result<Option<Message>> {
        let applied = apply(self)?;
        self.conn.execute(
            "DELETE FROM outbox WHERE message_id = ?1",
            [message_id.to_string()],
        )?;
        Ok(applied)
    }

    /// Marks a message failed (it stays until retried or discarded).
    pub fn fail(&self, message_id: uuid::Uuid, why: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET failed = ?2 WHERE message_id = ?1",
            (message_id.to_string(), why),
        )?;
        Ok(())
    }

    /// Makes a failed message pending again (to be encrypted afresh).
    /// False when there is no such message.
    pub fn retry(&self, message_id: uuid::Uuid) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE outbox SET failed = NULL, epoch = NULL, ciphertext = NULL \
             WHERE message_id = ?1 AND failed IS NOT NULL",
            [message_id.to_string()],
        )? > 0)
    }

    /// Drops a message. False when there was none.
    pub fn discard(&self, message_id: uuid::Uuid) -> Result<bool> {
        Ok(self.conn.execute(
            "DELETE FROM outbox WHERE message_id = ?1",
            [message_id.to_string()],
        )? > 0)
    }

    /// One message of the outbox.
    pub fn outgoing(&self, message_id: uuid::Uuid) -> Result<Option<OutboxRow>> {
        Ok(self
            .outbox_rows("WHERE message_id = ?1", [message_id.to_string()])?
            .into_iter()
            .next())
    }

    /// Every message of the outbox (pending and failed), oldest first;
    /// with `circle`, that circle's only.
    pub fn outbox(&self, circle: Option<&CircleId>) -> Result<Vec<OutboxRow>> {
        match circle {
            Some(circle) => self.outbox_rows("WHERE circle_id = ?1", [circle.as_bytes().to_vec()]),
            None => self.outbox_rows("", []),
        }
    }

    /// The circles with messages pending (not failed).
    pub fn circles_pending(&self) -> Result<Vec<CircleId>> {
        let mut statement = self.conn.prepare(
            "SELECT DISTINCT circle_id FROM outbox WHERE failed IS NULL ORDER BY circle_id",
        )?;
        let rows = statement.query_map((), |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|r| CircleId::from_bytes(r?).map_err(|_| corrupt("circle id")))
            .collect()
    }

    fn outbox_rows(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<OutboxRow>> {
        let query = format!(
            "SELECT circle_id, message_id, envelope, epoch, ciphertext, failed, created_at \
             FROM outbox {filter} ORDER BY id"
        );
        let mut statement = self.conn.prepare(&query)?;
        let rows = statement.query_map(params, |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                bytes(r, 2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<Vec<u8>>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        rows.map(|row| {
            let (circle, message_id, envelope, epoch, ciphertext, failed, created_at) = row?;
            let message_id =
                uuid::Uuid::try_parse(&message_id).map_err(|_| corrupt("outbox message id"))?;
            let envelope = self.unseal(&[&place(&message_id)], envelope)?;
            Ok(OutboxRow {
                circle: CircleId::from_bytes(circle).map_err(|_| corrupt("circle id"))?,
                message_id,
                envelope: Envelope::from_bytes(&envelope),
                encrypted: epoch
                    .zip(ciphertext)
                    .map(|(e, c)| (u64::try_from(e).unwrap_or_default(), c)),
                failed,
                created_at,
            })
        })
        .collect()
    }
}
