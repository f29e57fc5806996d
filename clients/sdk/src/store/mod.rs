//! The client's own state on disk (`client.db` in the data directory): the
//! device's key and ids, its login, a cursor per circle, note keys of the
//! invites it minted, names and titles, and the decrypted history. MLS state
//! lives beside it in `mls.db`, written by openmls itself.
//!
//! The schema moves forward by numbered migrations (`PRAGMA user_version`):
//! a data directory written by an older SDK is brought up to date on open.

use crate::durable::Wal;
use crate::error::{ClientError, Result};
use crate::messages::Message;
use hearth_protocol::{AccountId, CircleId, DeviceId};
use rusqlite::{Connection, OptionalExtension as _};
use secrecy::SecretBox;
use std::path::Path;

mod calendar;

pub(crate) use calendar::CalendarItem;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: [&str; 3] = [SCHEMA_1, LOGIN_2, calendar::CALENDAR_3];

/// The first schema. (Data directories from before versioning hold exactly
/// these tables, which is why every statement says `IF NOT EXISTS`.)
const SCHEMA_1: &str = "
CREATE TABLE IF NOT EXISTS device (
    one        INTEGER PRIMARY KEY CHECK (one = 1),
    device_id  TEXT NOT NULL,
    account_id TEXT NOT NULL,
    seed       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS session (
    one            INTEGER PRIMARY KEY CHECK (one = 1),
    access_token   TEXT NOT NULL,
    access_expires INTEGER NOT NULL,
    refresh_token  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS circles (
    circle_id BLOB PRIMARY KEY,
    cursor    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS note_keys (
    invite_id TEXT PRIMARY KEY,
    circle_id BLOB NOT NULL,
    key       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS names (
    circle_id    BLOB NOT NULL,
    device_id    TEXT NOT NULL,
    display_name TEXT NOT NULL,
    PRIMARY KEY (circle_id, device_id)
);
CREATE TABLE IF NOT EXISTS titles (
    circle_id BLOB PRIMARY KEY,
    title     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    circle_id   BLOB    NOT NULL,
    seq         INTEGER NOT NULL,
    sender      TEXT    NOT NULL,
    envelope    BLOB    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (circle_id, seq)
);
";

/// "Session" now means a circle's meeting; a login is a login.
const LOGIN_2: &str = "ALTER TABLE session RENAME TO login;";

/// The registered device as stored.
pub(crate) struct DeviceRow {
    pub device_id: DeviceId,
    pub account_id: AccountId,
    pub seed: SecretBox<[u8; 32]>,
}

/// The login as stored: the current access token and the refresh token.
pub(crate) struct LoginRow {
    pub access_token: String,
    pub access_expires: i64,
    pub refresh_token: String,
}

pub(crate) struct Store {
    conn: Connection,
    /// `client.db`'s write-ahead log, synced at the end of each step.
    wal: Wal,
}

/// A device id read back from a column.
fn device_id(text: &str) -> Result<DeviceId> {
    text.parse().map_err(|_| corrupt("device id"))
}

fn corrupt(what: &'static str) -> ClientError {
    ClientError::Unexpected(what)
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("client.db");
        let conn = Connection::open(&path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;",
        )?;
        let version: usize = conn.query_row("PRAGMA user_version", (), |r| r.get(0))?;
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(migration)?;
            tx.pragma_update(None, "user_version", from + 1)?;
            tx.commit()?;
        }
        Ok(Self {
            conn,
            wal: Wal::of(&path),
        })
    }

    /// Makes every write so far durable; commits themselves do not wait for
    /// the disk (see `durable`).
    pub fn make_durable(&mut self) -> Result<()> {
        Ok(self.wal.sync()?)
    }

    pub fn device(&self) -> Result<Option<DeviceRow>> {
        let row = self
            .conn
            .query_row("SELECT device_id, account_id, seed FROM device", (), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            })
            .optional()?;
        row.map(|(device, account, seed)| {
            Ok(DeviceRow {
                device_id: device.parse().map_err(|_| corrupt("device id"))?,
                account_id: account.parse().map_err(|_| corrupt("account id"))?,
                seed: SecretBox::new(Box::new(
                    seed.try_into().map_err(|_| corrupt("device key"))?,
                )),
            })
        })
        .transpose()
    }

    pub fn save_device(&self, device: DeviceId, account: AccountId, seed: &[u8; 32]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO device (one, device_id, account_id, seed) VALUES (1, ?1, ?2, ?3)",
            (device.to_string(), account.to_string(), seed.as_slice()),
        )?;
        Ok(())
    }

    pub fn login(&self) -> Result<Option<LoginRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT access_token, access_expires, refresh_token FROM login",
                (),
                |r| {
                    Ok(LoginRow {
                        access_token: r.get(0)?,
                        access_expires: r.get(1)?,
                        refresh_token: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn save_login(&self, login: &LoginRow) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO login (one, access_token, access_expires, refresh_token) \
             VALUES (1, ?1, ?2, ?3)",
            (
                &login.access_token,
                login.access_expires,
                &login.refresh_token,
            ),
        )?;
        Ok(())
    }

    pub fn clear_login(&self) -> Result<()> {
        self.conn.execute("DELETE FROM login", ())?;
        Ok(())
    }

    pub fn circles(&self) -> Result<Vec<(CircleId, u64)>> {
        let mut statement = self.conn.prepare("SELECT circle_id, cursor FROM circles")?;
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
    fn circle_number(&self, query: &str, circle: &CircleId) -> Result<Option<u64>> {
        let value: Option<i64> = self
            .conn
            .query_row(query, [circle.as_bytes()], |r| r.get(0))
            .optional()?;
        Ok(value.map(|v| u64::try_from(v).unwrap_or_default()))
    }

    pub fn set_cursor(&self, circle: &CircleId, cursor: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO circles (circle_id, cursor) VALUES (?1, ?2) \
             ON CONFLICT (circle_id) DO UPDATE SET cursor = MAX(cursor, excluded.cursor)",
            (circle.as_bytes(), i64::try_from(cursor).unwrap_or(i64::MAX)),
        )?;
        Ok(())
    }

    pub fn forget_circle(&self, circle: &CircleId) -> Result<()> {
        self.conn.execute(
            "DELETE FROM circles WHERE circle_id = ?1",
            [circle.as_bytes()],
        )?;
        Ok(())
    }

    pub fn save_note_key(&self, invite: uuid::Uuid, circle: &CircleId, key: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO note_keys (invite_id, circle_id, key) VALUES (?1, ?2, ?3)",
            (invite.to_string(), circle.as_bytes(), key),
        )?;
        Ok(())
    }

    pub fn note_keys(&self, circle: &CircleId) -> Result<Vec<Vec<u8>>> {
        let mut statement = self
            .conn
            .prepare("SELECT key FROM note_keys WHERE circle_id = ?1")?;
        let keys = statement.query_map([circle.as_bytes()], |r| r.get::<_, Vec<u8>>(0))?;
        Ok(keys.collect::<Result<Vec<_>, _>>()?)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
            (key, value),
        )?;
        Ok(())
    }

    pub fn set_name(&self, circle: &CircleId, device: DeviceId, name: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO names (circle_id, device_id, display_name) VALUES (?1, ?2, ?3)",
            (circle.as_bytes(), device.to_string(), name),
        )?;
        Ok(())
    }

    pub fn names(&self, circle: &CircleId) -> Result<Vec<(DeviceId, String)>> {
        let mut statement = self
            .conn
            .prepare("SELECT device_id, display_name FROM names WHERE circle_id = ?1")?;
        let rows = statement.query_map([circle.as_bytes()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (device, name) = row?;
            Ok((device_id(&device)?, name))
        })
        .collect()
    }

    pub fn set_title(&self, circle: &CircleId, title: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO titles (circle_id, title) VALUES (?1, ?2)",
            (circle.as_bytes(), title),
        )?;
        Ok(())
    }

    pub fn title(&self, circle: &CircleId) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT title FROM titles WHERE circle_id = ?1",
                [circle.as_bytes()],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn add_history(&self, circle: &CircleId, row: &Message) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO history (circle_id, seq, sender, envelope, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            (
                circle.as_bytes(),
                i64::try_from(row.seq).unwrap_or(i64::MAX),
                row.sender.to_string(),
                row.envelope.to_bytes(),
                row.received_at,
            ),
        )?;
        Ok(())
    }

    pub fn history(&self, circle: &CircleId) -> Result<Vec<Message>> {
        let rows = self.envelope_rows(
            "SELECT seq, sender, envelope, received_at FROM history WHERE circle_id = ?1 ORDER BY seq",
            circle,
        )?;
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

    /// `(seq, sender, envelope, received_at)` rows of a circle, from a query
    /// that selects those four columns.
    fn envelope_rows(
        &self,
        query: &str,
        circle: &CircleId,
    ) -> Result<Vec<(u64, DeviceId, hearth_protocol::content::Envelope, i64)>> {
        let mut statement = self.conn.prepare(query)?;
        let rows = statement.query_map([circle.as_bytes()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (seq, sender, envelope, received_at) = row?;
            Ok((
                u64::try_from(seq).unwrap_or_default(),
                device_id(&sender)?,
                hearth_protocol::content::Envelope::from_bytes(&envelope),
                received_at,
            ))
        })
        .collect()
    }
}
