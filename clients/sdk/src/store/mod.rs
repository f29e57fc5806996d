//! The client's own state on disk (`client.db` in the data directory): the
//! device's key and ids, its login, a cursor per circle, note keys of the
//! invites it minted, names and titles, and the decrypted history. MLS state
//! lives beside it in `mls.db`, written by openmls itself.
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

pub(crate) use calendar::CalendarItem;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only.
const MIGRATIONS: [&str; 4] = [SCHEMA_1, LOGIN_2, calendar::CALENDAR_3, GONE_4];

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

    pub fn device(&self) -> Result<Option<DeviceRow>> {
        let row = self
            .conn
            .query_row("SELECT device_id, account_id, seed FROM device", (), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, bytes(r, 2)?))
            })
            .optional()?;
        row.map(|(device, account, seed)| {
            let seed = self.unseal(&[b"device/seed"], seed)?;
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
            (
                device.to_string(),
                account.to_string(),
                self.seal(&[b"device/seed"], seed)?,
            ),
        )?;
        Ok(())
    }

    pub fn login(&self) -> Result<Option<LoginRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT access_token, access_expires, refresh_token FROM login",
                (),
                |r| Ok((bytes(r, 0)?, r.get::<_, i64>(1)?, bytes(r, 2)?)),
            )
            .optional()?;
        row.map(|(access, access_expires, refresh)| {
            Ok(LoginRow {
                access_token: text(self.unseal(&[b"login/access"], access)?)?,
                access_expires,
                refresh_token: text(self.unseal(&[b"login/refresh"], refresh)?)?,
            })
        })
        .transpose()
    }

    pub fn save_login(&self, login: &LoginRow) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO login (one, access_token, access_expires, refresh_token) \
             VALUES (1, ?1, ?2, ?3)",
            (
                self.seal(&[b"login/access"], login.access_token.as_bytes())?,
                login.access_expires,
                self.seal(&[b"login/refresh"], login.refresh_token.as_bytes())?,
            ),
        )?;
        Ok(())
    }

    pub fn clear_login(&self) -> Result<()> {
        self.conn.execute("DELETE FROM login", ())?;
        Ok(())
    }

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
    /// it reads on from there.
    pub fn join_circle(&self, circle: &CircleId, seq: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO circles (circle_id, cursor) VALUES (?1, ?2) \
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

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let value = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                bytes(r, 0)
            })
            .optional()?;
        value
            .map(|v| text(self.unseal(&[b"setting/", key.as_bytes()], v)?))
            .transpose()
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
            (
                key,
                self.seal(&[b"setting/", key.as_bytes()], value.as_bytes())?,
            ),
        )?;
        Ok(())
    }

    pub fn set_name(&self, circle: &CircleId, device: DeviceId, name: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO names (circle_id, device_id, display_name) VALUES (?1, ?2, ?3)",
            (
                circle.as_bytes(),
                device.to_string(),
                self.seal(
                    &[b"name/", circle.as_bytes(), device.as_bytes()],
                    name.as_bytes(),
                )?,
            ),
        )?;
        Ok(())
    }

    pub fn names(&self, circle: &CircleId) -> Result<Vec<(DeviceId, String)>> {
        let mut statement = self
            .conn
            .prepare("SELECT device_id, display_name FROM names WHERE circle_id = ?1")?;
        let rows = statement.query_map([circle.as_bytes()], |r| {
            Ok((r.get::<_, String>(0)?, bytes(r, 1)?))
        })?;
        rows.map(|row| {
            let (device, name) = row?;
            let device = device_id(&device)?;
            let place: [&[u8]; 3] = [b"name/", circle.as_bytes(), device.as_bytes()];
            Ok((device, text(self.unseal(&place, name)?)?))
        })
        .collect()
    }

    pub fn set_title(&self, circle: &CircleId, title: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO titles (circle_id, title) VALUES (?1, ?2)",
            (
                circle.as_bytes(),
                self.seal(&[b"title/", circle.as_bytes()], title.as_bytes())?,
            ),
        )?;
        Ok(())
    }

    pub fn title(&self, circle: &CircleId) -> Result<Option<String>> {
        let title = self
            .conn
            .query_row(
                "SELECT title FROM titles WHERE circle_id = ?1",
                [circle.as_bytes()],
                |r| bytes(r, 0),
            )
            .optional()?;
        title
            .map(|t| text(self.unseal(&[b"title/", circle.as_bytes()], t)?))
            .transpose()
    }

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
        // The number is ours (a u64), not text from outside.
        Ok(self
            .history_where(circle, &format!("AND seq = {seq}"))?
            .into_iter()
            .next())
    }

    pub fn history(&self, circle: &CircleId) -> Result<Vec<Message>> {
        self.history_where(circle, "")
    }

    /// The circle's history rows that also match `filter`, oldest first.
    fn history_where(&self, circle: &CircleId, filter: &str) -> Result<Vec<Message>> {
        let rows = self.envelope_rows(
            &format!(
                "SELECT seq, sender, envelope, received_at FROM history \
                 WHERE circle_id = ?1 {filter} ORDER BY seq"
            ),
            circle,
            |seq, _| {
                [
                    b"history/".as_slice(),
                    circle.as_bytes(),
                    &seq.to_be_bytes(),
                ]
                .concat()
            },
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
    /// that selects those four columns and then the row's key (`place`
    /// makes the sealed envelope's place from the seq and that key).
    fn envelope_rows(
        &self,
        query: &str,
        circle: &CircleId,
        place: impl Fn(u64, &str) -> Vec<u8>,
    ) -> Result<Vec<(u64, DeviceId, hearth_protocol::content::Envelope, i64)>> {
        let mut statement = self.conn.prepare(query)?;
        let rows = statement.query_map([circle.as_bytes()], |r| {
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hearth_protocol::content::{Content, Envelope};

    fn key(byte: u8) -> SecretBox<[u8; 32]> {
        SecretBox::new(Box::new([byte; 32]))
    }

    /// Every file of the store, write-ahead log included.
    fn files(dir: &Path) -> Vec<u8> {
        std::fs::read_dir(dir)
            .unwrap()
            .flat_map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
            .collect()
    }

    fn holds(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn with_a_key_the_files_hold_no_seed_token_name_title_or_message() {
        let dir = tempfile::tempdir().unwrap();
        let seed = [0x5e_u8; 32];
        let circle = CircleId::from_bytes(b"circle-canary-id".to_vec()).unwrap();
        let device = DeviceId::from_uuid(uuid::Uuid::new_v4());
        {
            let store = Store::open(dir.path(), Some(&key(1))).unwrap();
            store
                .save_device(device, AccountId::from_uuid(uuid::Uuid::new_v4()), &seed)
                .unwrap();
            store
                .save_login(&LoginRow {
                    access_token: "access-token-canary".into(),
                    access_expires: 1,
                    refresh_token: "refresh-token-canary".into(),
                })
                .unwrap();
            store.set_setting("display_name", "name-canary").unwrap();
            store
                .set_name(&circle, device, "member-name-canary")
                .unwrap();
            store.set_title(&circle, "title-canary").unwrap();
            store
                .save_note_key(uuid::Uuid::new_v4(), &circle, b"note-key-canary")
                .unwrap();
            let envelope = Envelope::new(Content::Text {
                id: uuid::Uuid::new_v4(),
                body: "message-canary".into(),
            });
            store
                .add_history(
                    &circle,
                    &Message {
                        seq: 7,
                        sender: device,
                        envelope: envelope.clone(),
                        received_at: 1,
                    },
                )
                .unwrap();
            // Read back through the vault.
            assert_eq!(store.device().unwrap().unwrap().seed.expose_secret(), &seed);
            assert_eq!(
                store.login().unwrap().unwrap().refresh_token,
                "refresh-token-canary"
            );
            assert_eq!(
                store.title(&circle).unwrap().as_deref(),
                Some("title-canary")
            );
            assert_eq!(store.history(&circle).unwrap()[0].envelope, envelope);
        }
        let bytes = files(dir.path());
        assert!(!holds(&bytes, &seed), "the key seed");
        for canary in [
            "access-token-canary",
            "refresh-token-canary",
            "name-canary",
            "member-name-canary",
            "title-canary",
            "note-key-canary",
            "message-canary",
        ] {
            assert!(!holds(&bytes, canary.as_bytes()), "{canary} on disk");
        }

        // The right key opens it again; a wrong key and no key are refused,
        // and say so.
        let reopened = Store::open(dir.path(), Some(&key(1))).unwrap();
        assert_eq!(
            reopened.setting("display_name").unwrap().as_deref(),
            Some("name-canary")
        );
        drop(reopened);
        assert!(matches!(
            Store::open(dir.path(), Some(&key(2))),
            Err(ClientError::WrongKey)
        ));
        assert!(matches!(
            Store::open(dir.path(), None),
            Err(ClientError::Locked)
        ));
    }

    #[test]
    fn a_store_made_without_a_key_is_not_opened_with_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).unwrap();
        store
            .save_device(
                DeviceId::from_uuid(uuid::Uuid::new_v4()),
                AccountId::from_uuid(uuid::Uuid::new_v4()),
                &[1; 32],
            )
            .unwrap();
        store
            .set_title(&CircleId::from_bytes(vec![9; 16]).unwrap(), "plain")
            .unwrap();
        drop(store);
        assert!(matches!(
            Store::open(dir.path(), Some(&key(1))),
            Err(ClientError::NotEncrypted)
        ));
        let store = Store::open(dir.path(), None).unwrap();
        assert_eq!(
            store
                .title(&CircleId::from_bytes(vec![9; 16]).unwrap())
                .unwrap()
                .as_deref(),
            Some("plain")
        );
    }
}
