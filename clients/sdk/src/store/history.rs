//! Decrypted messages, sealed at rest: table `history`.

use super::*;

impl Store {
    pub fn add_history(&self, circle: &CircleId, row: &Message) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO history (circle_id, seq, sender, envelope, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (
                circle.as_bytes(),
                i64::try_from(row.seq).unwrap_or(i64::MAX),
                row.sender.to_string(),
                self.seal(
                    &[b"history/", circle.as_bytes(), &row.seq.to_be_bytes()],
                    &row.envelope.to_bytes(),
                )?,
                row.received_at,
            ),
        )?;
        Ok(())
    }

    /// The history row at `seq`, if there is one.
    pub fn history_at(&self, circle: &CircleId, seq: u64) -> Result<Option<Message>> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        Ok(self
            .history_rows(
                "SELECT seq, sender, envelope, received_at FROM history \
                 WHERE circle_id = ?1 AND seq = ?2",
                (circle.as_bytes(), seq),
                circle,
            )?
            .into_iter()
            .next())
    }

    /// The circle's history after `after` up to `upto`, oldest first.
    pub fn history_between(
        &self,
        circle: &CircleId,
        after: u64,
        upto: u64,
    ) -> Result<Vec<Message>> {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.history_rows(
            "SELECT seq, sender, envelope, received_at FROM history \
             WHERE circle_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq",
            (circle.as_bytes(), signed(after), signed(upto)),
            circle,
        )
    }

    /// The circle's history, oldest first.
    pub fn history(&self, circle: &CircleId) -> Result<Vec<Message>> {
        self.history_rows(
            "SELECT seq, sender, envelope, received_at FROM history \
             WHERE circle_id = ?1 ORDER BY seq",
            [circle.as_bytes()],
            circle,
        )
    }

    /// The messages a history query (with its parameters) selects.
    fn history_rows(
        &self,
        query: &str,
        params: impl rusqlite::Params,
        circle: &CircleId,
    ) -> Result<Vec<Message>> {
        let rows = self.envelope_rows(query, params, |seq, _| {
            [
                b"history/".as_slice(),
                circle.as_bytes(),
                &seq.to_be_bytes(),
            ]
            .concat()
        })?;
        Ok(rows
            .into_iter()
            .map(|(seq, sender, envelope, received_at)| Message {
                seq,
                sender,
                envelope,
                received_at,
            })
            .collect())
    }
}
