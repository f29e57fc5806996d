//! The device's MLS provider: RustCrypto for cryptography and openmls's
//! SQLite storage for group state, in `client.db` beside the store's own
//! tables, over the store's own connection: a step's MLS changes commit in
//! the same transaction as what the step stored (see `Client::with`).
//! What the groups look like is Hearth's profile (`hearth_protocol::mls`).
//!
//! Data directories from before kept openmls's tables in a file of their
//! own, `mls.db`; [`adopt_legacy`] moves them in on open.

use hearth_protocol::mls::failed;
use openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, Connection, SqliteStorageProvider};
use rusqlite::OptionalExtension as _;
use std::path::Path;

/// JSON for openmls's stored keys and values, sealed when the step running
/// on this thread has a vault (see `vault`). Keys must seal the same way
/// every time to be found again, so the codec seals deterministically.
#[derive(Debug, Default)]
pub struct JsonCodec;

/// Why a stored MLS value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The JSON did not encode or decode.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The value could not be sealed, or did not open under the vault.
    #[error("a sealed MLS value that does not open")]
    Sealed,
}

/// openmls's values are bound to this place (the codec does not see rows).
const MLS_PLACE: &[u8] = b"mls/value";

impl Codec for JsonCodec {
    type Error = CodecError;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        let json = serde_json::to_vec(value)?;
        match crate::vault::current() {
            Some(vault) => vault
                .seal_fixed(MLS_PLACE, &json)
                .map_err(|_| CodecError::Sealed),
            None => Ok(json),
        }
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        match crate::vault::current() {
            Some(vault) => {
                let json = vault
                    .open(MLS_PLACE, slice)
                    .map_err(|_| CodecError::Sealed)?;
                Ok(serde_json::from_slice(&json)?)
            }
            None => Ok(serde_json::from_slice(slice)?),
        }
    }
}

/// Crypto plus persistent storage, for one step.
pub struct Provider<'a> {
    crypto: &'a RustCrypto,
    storage: SqliteStorageProvider<JsonCodec, &'a Connection>,
}

impl std::fmt::Debug for Provider<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Provider")
    }
}

impl<'a> Provider<'a> {
    /// openmls over `connection` (the store's).
    pub fn new(connection: &'a Connection, crypto: &'a RustCrypto) -> Self {
        Self {
            crypto,
            storage: SqliteStorageProvider::new(connection),
        }
    }
}

/// Creates (or brings up to date) openmls's tables.
pub fn migrate(connection: &mut Connection) -> Result<(), crate::ClientError> {
    SqliteStorageProvider::<JsonCodec, &mut Connection>::new(connection)
        .run_migrations()
        .map_err(failed("migrating the MLS store"))?;
    Ok(())
}

/// Moves openmls's tables of a data directory from before (`mls.db`) into
/// `client.db`, in one transaction, then removes the old file. A copy cut
/// short leaves `mls.db` in place and is done again on the next open.
pub fn adopt_legacy(connection: &Connection, dir: &Path) -> Result<(), crate::ClientError> {
    let legacy = dir.join("mls.db");
    if !legacy.exists() {
        return Ok(());
    }
    let path = legacy.to_str().ok_or(crate::ClientError::Unexpected(
        "a data directory path that is not UTF-8",
    ))?;
    connection.execute("ATTACH DATABASE ?1 AS legacy", [path])?;
    let copied = (|| -> Result<(), crate::ClientError> {
        let tables: Vec<String> = {
            let mut statement = connection.prepare(
                "SELECT name FROM legacy.sqlite_master WHERE type = 'table' \
                 AND name != 'openmls_sqlite_storage_migrations' AND name NOT LIKE 'sqlite_%'",
            )?;
            let names = statement.query_map((), |r| r.get::<_, String>(0))?;
            names.collect::<Result<_, _>>()?
        };
        let tx = connection.unchecked_transaction()?;
        for table in tables {
            let here: Option<String> = tx
                .query_row(
                    "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name = ?1",
                    [&table],
                    |r| r.get(0),
                )
                .optional()?;
            // Only openmls's own tables, which `migrate` created here.
            let Some(here) = here else { continue };
            tx.execute(
                &format!("INSERT OR REPLACE INTO main.\"{here}\" SELECT * FROM legacy.\"{here}\""),
                (),
            )?;
        }
        tx.commit()?;
        Ok(())
    })();
    connection.execute("DETACH DATABASE legacy", ())?;
    copied?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = legacy.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
            _ => {}
        }
    }
    Ok(())
}

impl<'a> OpenMlsProvider for Provider<'a> {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<JsonCodec, &'a Connection>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        self.crypto
    }
}
