//! The client's own state on disk (`client.db` in the data directory): the
//! device's key and ids, its login, a cursor per circle, note keys of the
//! invites it minted, names and titles, and the decrypted history. openmls's
//! tables live in the same database, written by openmls itself over this
//! store's connection (see `provider`), so that one transaction holds a
//! step's MLS changes and what it stored.
//!
//! The schema moves forward by numbered migrations (`PRAGMA user_version`):
//! a data directory written by an older SDK is brought up to date on open.
//!
//! Opened with a key, every sensitive value is sealed in its place (see
//! `vault`); the `settings` row `vault` holds a check value that tells a
//! wrong key from the right one.

use crate::durable::Wal;
use crate::error::{ClientError, Result};
use crate::messages::Message;
use crate::vault::Vault;
use hearth_protocol::{AccountId, CircleId, DeviceId};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension as _, Row};
use secrecy::{ExposeSecret as _, SecretBox};
use std::path::Path;
use std::sync::Arc;

mod calendar;
mod circles;
mod history;
mod identity;
mod outbox;
mod people;

pub(crate) use calendar::CalendarItem;
pub(crate) use outbox::OutboxRow;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: [&str; 6] = [
    SCHEMA_1,
    LOGIN_2,
    calendar::CALENDAR_3,
    GONE_4,
    outbox::OUTBOX_5,
    SHOWN_6,
];

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

/// A circle this device left or was removed from stays, with its history:
/// `gone` says how (`left`, `removed`); NULL while it is a member.
const GONE_4: &str = "ALTER TABLE circles ADD COLUMN gone TEXT;";

/// How far the app has been handed each circle's messages, whichever
/// process handed them (see `notifications`): what a directory held before
/// counts as handed, so an upgrade notifies nothing old.
const SHOWN_6: &str = "
ALTER TABLE circles ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
UPDATE circles SET shown = cursor;
";

/// How this device stopped being in a circle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    /// It left.
    Left,
    /// A facilitator removed it (or its device was revoked).
    Removed,
}

impl Gone {
    fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Removed => "removed",
        }
    }

    /// Anything but "left" reads as removed: the stricter of the two.
    fn parse(text: &str) -> Self {
        if text == Self::Left.as_str() {
            Self::Left
        } else {
            Self::Removed
        }
    }
}

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
    /// The key values are sealed with, when the store has one.
    vault: Option<Arc<Vault>>,
}

/// The `settings` key of the vault's check value.
const VAULT_CHECK: &str = "vault";

/// Text or bytes read back as bytes (sealed values are bytes; values
/// written without a vault, by this version or an older one, may be text).
fn bytes(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(index)? {
        ValueRef::Text(text) | ValueRef::Blob(text) => Ok(text.to_vec()),
        _ => Err(rusqlite::Error::InvalidColumnType(
            index,
            "value".into(),
            rusqlite::types::Type::Null,
        )),
    }
}

fn text(value: Vec<u8>) -> Result<String> {
    String::from_utf8(value).map_err(|_| corrupt("text that is not UTF-8"))
}

/// A device id read back from a column.
fn device_id(text: &str) -> Result<DeviceId> {
    text.parse().map_err(|_| corrupt("device id"))
}

fn corrupt(what: &'static str) -> ClientError {
    ClientError::Unexpected(what)
}

impl Store {
    /// Opens (creating) `client.db`; with `key`, a store created with it
    /// (or new), without, a store created without one.
    pub fn open(dir: &Path, key: Option<&SecretBox<[u8; 32]>>) -> Result<Self> {
        let path = dir.join("client.db");
        let mut conn = Connection::open(&path)?;
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
        crate::provider::migrate(&mut conn)?;
        crate::provider::adopt_legacy(&conn, dir)?;
        let check: Option<Vec<u8>> = conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [VAULT_CHECK],
                |r| bytes(r, 0),
            )
            .optional()?;
        let vault = match (check, key) {
            (None, None) => None,
            (Some(_), None) => return Err(ClientError::Locked),
            (Some(check), Some(key)) => {
                let vault = Vault::new(key.expose_secret());
                if !vault.verifies(&check) {
                    return Err(ClientError::WrongKey);
                }
                Some(Arc::new(vault))
            }
            (None, Some(key)) => {
                let used: i64 = conn.query_row("SELECT COUNT(*) FROM device", (), |r| r.get(0))?;
                if used > 0 {
                    return Err(ClientError::NotEncrypted);
                }
                let vault = Vault::new(key.expose_secret());
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2)",
                    (VAULT_CHECK, vault.check_value()?),
                )?;
                Some(Arc::new(vault))
            }
        };
        Ok(Self {
            conn,
            wal: Wal::of(&path),
            vault,
        })
    }

    /// The connection, for openmls (see `provider`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Starts a step's transaction (first ending one a panic left open).
    pub fn begin(&self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Commits the step's transaction.
    pub fn commit(&self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Undoes the step's transaction.
    pub fn roll_back(&self) -> Result<()> {
        if !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK")?;
        }
        Ok(())
    }

    /// The vault, for openmls's codec (see `vault::enter`).
    pub fn vault(&self) -> Option<Arc<Vault>> {
        self.vault.clone()
    }

    /// `plain` as stored at `place`: sealed when the store has a key.
    fn seal(&self, place: &[&[u8]], plain: &[u8]) -> Result<Vec<u8>> {
        match &self.vault {
            Some(vault) => vault.seal(&place.concat(), plain),
            None => Ok(plain.to_vec()),
        }
    }

    /// What was stored at `place`, opened.
    fn unseal(&self, place: &[&[u8]], stored: Vec<u8>) -> Result<Vec<u8>> {
        match &self.vault {
            Some(vault) => vault.open(&place.concat(), &stored),
            None => Ok(stored),
        }
    }

    /// Makes every write so far durable; commits themselves do not wait for
    /// the disk (see `durable`).
    pub fn make_durable(&mut self) -> Result<()> {
        Ok(self.wal.sync()?)
    }

    /// `(seq, sender, envelope, received_at)` rows of a circle, from a query
    /// that selects those four columns and then the row's key (`place`
    /// makes the sealed envelope's place from the seq and that key).
    fn envelope_rows(
        &self,
        query: &str,
        params: impl rusqlite::Params,
        place: impl Fn(u64, &str) -> Vec<u8>,
    ) -> Result<Vec<(u64, DeviceId, hearth_protocol::content::Envelope, i64)>> {
        let mut statement = self.conn.prepare(query)?;
        let rows = statement.query_map(params, |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                bytes(r, 2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            ))
        })?;
        rows.map(|row| {
            let (seq, sender, envelope, received_at, key) = row?;
            let seq = u64::try_from(seq).unwrap_or_default();
            let envelope = self.unseal(&[&place(seq, &key)], envelope)?;
            Ok((
                seq,
                device_id(&sender)?,
                hearth_protocol::content::Envelope::from_bytes(&envelope),
                received_at,
            ))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests;
