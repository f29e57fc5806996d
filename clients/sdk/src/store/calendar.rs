//! The calendar's items as they arrived (from the log or a snapshot), who the
//! circle's facilitators are as far as this device knows, and which snapshot
//! version it has read. The calendar itself is folded from these on demand.

use super::{Store, device_id};
use crate::error::Result;
use hearth_protocol::content::{Content, Envelope};
use hearth_protocol::{CircleId, DeviceId};

pub(super) const CALENDAR_3: &str = "
CREATE TABLE IF NOT EXISTS calendar (
    circle_id BLOB    NOT NULL,
    item_id   TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    sender    TEXT    NOT NULL,
    envelope  BLOB    NOT NULL,
    PRIMARY KEY (circle_id, item_id)
);
CREATE TABLE IF NOT EXISTS facilitators (
    circle_id BLOB NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (circle_id, device_id)
);
CREATE TABLE IF NOT EXISTS snapshot_read (
    circle_id BLOB    PRIMARY KEY,
    version   INTEGER NOT NULL
);
";

/// One calendar item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CalendarItem {
    /// Where it stood in the log.
    pub seq: u64,
    /// Who sent it.
    pub sender: DeviceId,
    /// What it says.
    pub content: Content,
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Keeps a calendar item, once per item id.
    pub fn add_calendar_item(&self, circle: &CircleId, item: &CalendarItem) -> Result<()> {
        let Some(id) = item.content.calendar_id() else {
            return Ok(());
        };
        self.conn.execute(
            "INSERT OR IGNORE INTO calendar (circle_id, item_id, seq, sender, envelope) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (
                circle.as_bytes(),
                id.to_string(),
                signed(item.seq),
                item.sender.to_string(),
                self.seal(
                    &[b"calendar/", circle.as_bytes(), id.to_string().as_bytes()],
                    &Envelope::new(item.content.clone()).to_bytes(),
                )?,
            ),
        )?;
        Ok(())
    }

    /// The circle's calendar items in log order.
    pub fn calendar_items(&self, circle: &CircleId) -> Result<Vec<CalendarItem>> {
        self.calendar_items_between(circle, 0, u64::MAX)
    }

    /// The calendar items that arrived in the log after `after` up to
    /// `upto`, in log order (items from a snapshot stand at the snapshot's
    /// place).
    pub fn calendar_items_between(
        &self,
        circle: &CircleId,
        after: u64,
        upto: u64,
    ) -> Result<Vec<CalendarItem>> {
        let rows = self.envelope_rows(
            "SELECT seq, sender, envelope, 0, item_id FROM calendar \
             WHERE circle_id = ?1 AND seq > ?2 AND seq <= ?3 ORDER BY seq, item_id",
            (circle.as_bytes(), signed(after), signed(upto)),
            |_, item| [b"calendar/".as_slice(), circle.as_bytes(), item.as_bytes()].concat(),
        )?;
        Ok(rows
            .into_iter()
            .map(|(seq, sender, envelope, _)| CalendarItem {
                seq,
                sender,
                content: envelope.content,
            })
            .collect())
    }

    /// Remembers devices as facilitators of the circle. Never forgets one:
    /// what a facilitator said while facilitating stays valid.
    pub fn add_facilitators(&self, circle: &CircleId, devices: &[DeviceId]) -> Result<()> {
        for device in devices {
            self.conn.execute(
                "INSERT OR IGNORE INTO facilitators (circle_id, device_id) VALUES (?1, ?2)",
                (circle.as_bytes(), device.to_string()),
            )?;
        }
        Ok(())
    }

    /// The circle's facilitators as far as this device knows.
    pub fn facilitators(&self, circle: &CircleId) -> Result<Vec<DeviceId>> {
        let mut statement = self
            .conn
            .prepare("SELECT device_id FROM facilitators WHERE circle_id = ?1")?;
        let rows = statement.query_map([circle.as_bytes()], |r| r.get::<_, String>(0))?;
        rows.map(|row| device_id(&row?)).collect()
    }

    /// The snapshot version this device has read (0: none).
    pub fn snapshot_read(&self, circle: &CircleId) -> Result<u64> {
        let query = "SELECT version FROM snapshot_read WHERE circle_id = ?1";
        Ok(self.circle_number(query, circle)?.unwrap_or(0))
    }

    /// Records that the snapshot up to `version` was read.
    pub fn set_snapshot_read(&self, circle: &CircleId, version: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO snapshot_read (circle_id, version) VALUES (?1, ?2) \
             ON CONFLICT (circle_id) DO UPDATE SET version = MAX(version, excluded.version)",
            (circle.as_bytes(), signed(version)),
        )?;
        Ok(())
    }
}
