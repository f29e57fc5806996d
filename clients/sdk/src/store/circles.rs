//! The circles this device is in or was in, with its cursor in each, and
//! the keys of invitation notes it made: tables `circles`, `note_keys`.

use super::*;

impl Store {
    /// The circles this device is in, with their cursors.
    pub fn circles(&self) -> Result<Vec<(CircleId, u64)>> {
        let mut statement = self
            .conn
            .prepare("SELECT circle_id, cursor FROM circles WHERE gone IS NULL")?;
        let rows =
            statement.query_map((), |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (id, cursor) = row?;
            Ok((
                CircleId::from_bytes(id).map_err(|_| corrupt("circle id"))?,
                u64::try_from(cursor).unwrap_or_default(),
            ))
        })
        .collect()
    }

    pub fn cursor(&self, circle: &CircleId) -> Result<Option<u64>> {
        self.circle_number("SELECT cursor FROM circles WHERE circle_id = ?1", circle)
    }

    /// One non-negative number a query selects for a circle, if any.
    pub(super) fn circle_number(&self, query: &str, circle: &CircleId) -> Result<Option<u64>> {
        let value: Option<i64> = self
            .conn
            .query_row(query, [circle.as_bytes()], |r| r.get(0))
            .optional()?;
        Ok(value.map(|v| u64::try_from(v).unwrap_or_default()))
    }

    /// Forgets a circle the server never had (its creation was refused):
    /// its cursor and facilitators.
    pub fn forget_circle(&self, circle: &CircleId) -> Result<()> {
        self.conn.execute(
            "DELETE FROM circles WHERE circle_id = ?1",
            [circle.as_bytes()],
        )?;
        self.conn.execute(
            "DELETE FROM facilitators WHERE circle_id = ?1",
            [circle.as_bytes()],
        )?;
        Ok(())
    }

    pub fn set_cursor(&self, circle: &CircleId, cursor: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO circles (circle_id, cursor) VALUES (?1, ?2) \
             ON CONFLICT (circle_id) DO UPDATE SET cursor = MAX(cursor, excluded.cursor)",
            (circle.as_bytes(), i64::try_from(cursor).unwrap_or(i64::MAX)),
        )?;
        Ok(())
    }

    /// How far the app has been handed the circle's messages (by a sync,
    /// the live stream or `notifications`), in whichever process.
    pub fn shown(&self, circle: &CircleId) -> Result<u64> {
        Ok(self
            .circle_number("SELECT shown FROM circles WHERE circle_id = ?1", circle)?
            .unwrap_or(0))
    }

    /// The app has been handed the circle's messages up to `seq`.
    pub fn set_shown(&self, circle: &CircleId, seq: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE circles SET shown = MAX(shown, ?2) WHERE circle_id = ?1",
            (circle.as_bytes(), i64::try_from(seq).unwrap_or(i64::MAX)),
        )?;
        Ok(())
    }

    /// The circles this device was in and is no longer, and how it left.
    pub fn past_circles(&self) -> Result<Vec<(CircleId, Gone)>> {
        let mut statement = self
            .conn
            .prepare("SELECT circle_id, gone FROM circles WHERE gone IS NOT NULL")?;
        let rows = statement.query_map((), |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (id, gone) = row?;
            Ok((
                CircleId::from_bytes(id).map_err(|_| corrupt("circle id"))?,
                Gone::parse(&gone),
            ))
        })
        .collect()
    }

    /// How this device left the circle, if it did.
    pub fn gone(&self, circle: &CircleId) -> Result<Option<Gone>> {
        let gone: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT gone FROM circles WHERE circle_id = ?1",
                [circle.as_bytes()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(gone.flatten().map(|how| Gone::parse(&how)))
    }

    /// This device is no longer in the circle: its history stays, nothing
    /// more is read.
    pub fn mark_gone(&self, circle: &CircleId, how: Gone) -> Result<()> {
        self.conn.execute(
            "UPDATE circles SET gone = ?2 WHERE circle_id = ?1",
            (circle.as_bytes(), how.as_str()),
        )?;
        Ok(())
    }

    /// This device joined (or rejoined) the circle from a Welcome at `seq`:
    /// it reads on from there (and what came before, a calendar snapshot
    /// say, is nothing to notify).
    pub fn join_circle(&self, circle: &CircleId, seq: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO circles (circle_id, cursor, shown) VALUES (?1, ?2, ?2) \
             ON CONFLICT (circle_id) DO UPDATE SET cursor = excluded.cursor, gone = NULL",
            (circle.as_bytes(), i64::try_from(seq).unwrap_or(i64::MAX)),
        )?;
        Ok(())
    }

    pub fn save_note_key(&self, invite: uuid::Uuid, circle: &CircleId, key: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO note_keys (invite_id, circle_id, key) VALUES (?1, ?2, ?3)",
            (
                invite.to_string(),
                circle.as_bytes(),
                self.seal(&[b"note_key/", circle.as_bytes()], key)?,
            ),
        )?;
        Ok(())
    }

    pub fn note_keys(&self, circle: &CircleId) -> Result<Vec<Vec<u8>>> {
        let mut statement = self
            .conn
            .prepare("SELECT key FROM note_keys WHERE circle_id = ?1")?;
        let keys = statement.query_map([circle.as_bytes()], |r| bytes(r, 0))?;
        keys.map(|key| self.unseal(&[b"note_key/", circle.as_bytes()], key?))
            .collect()
    }
}
