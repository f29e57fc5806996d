//! The device's MLS provider: RustCrypto for cryptography and openmls's
//! SQLite storage (`mls.db`) for group state, so groups survive restarts.
//! What the groups look like is Hearth's profile (`hearth_protocol::mls`).
//!
//! `mls.db` commits without waiting for the disk; see `durable` for when it
//! is made durable.

use crate::durable::Wal;
use hearth_protocol::mls::failed;
use openmls::prelude::*;
use openmls_rust_crypto::RustCrypto;
use openmls_sqlite_storage::{Codec, Connection, SqliteStorageProvider};
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

/// Crypto plus persistent storage.
pub struct Provider {
    crypto: RustCrypto,
    storage: SqliteStorageProvider<JsonCodec, Connection>,
    /// `mls.db`'s write-ahead log, synced at the end of each step.
    wal: Wal,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Provider")
    }
}

impl Provider {
    /// Opens (creating) `mls.db` in the data directory.
    pub fn open(dir: &Path) -> Result<Self, crate::ClientError> {
        let path = dir.join("mls.db");
        let connection = Connection::open(&path)?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA secure_delete = ON;",
        )?;
        let mut storage = SqliteStorageProvider::new(connection);
        storage
            .run_migrations()
            .map_err(failed("migrating the MLS store"))?;
        Ok(Self {
            crypto: RustCrypto::default(),
            storage,
            wal: Wal::of(&path),
        })
    }

    /// Makes every MLS write so far durable.
    pub fn make_durable(&mut self) -> Result<(), crate::ClientError> {
        Ok(self.wal.sync()?)
    }
}

impl OpenMlsProvider for Provider {
    type CryptoProvider = RustCrypto;
    type RandProvider = RustCrypto;
    type StorageProvider = SqliteStorageProvider<JsonCodec, Connection>;

    fn storage(&self) -> &Self::StorageProvider {
        &self.storage
    }

    fn crypto(&self) -> &Self::CryptoProvider {
        &self.crypto
    }

    fn rand(&self) -> &Self::RandProvider {
        &self.crypto
    }
}
