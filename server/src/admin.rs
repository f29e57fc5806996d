//! What an operator does beside serving (`hearth-server admin …`): online
//! backups of the SQLite database, a new log generation after a restore,
//! facilitator codes and enrolments, and the instance's figures. Nothing
//! here prints a token or a key, and the server knows no names: a
//! facilitator is an opaque account id and a date.
//!
//! A restore takes every circle's log back to the backup: numbers handed out
//! after it would be handed out again, and a client whose cursor is past
//! them would skip the new messages without a word. So every restore begins
//! a new generation ([`Instance`]): a new name, told to clients with every
//! read, and every circle's numbers jump ahead by [`GENERATION_JUMP`]. A
//! backup made here is marked as one, and a server that starts on it begins
//! the generation itself; after a restore by other means (`sqlite3 .backup`,
//! `pg_restore`) the operator runs `hearth-server admin restored` first.

use crate::config::Config;
use crate::crypto::{RandomError, random_bytes};
use crate::storage::{GENERATION_JUMP, Instance, Storage, StorageError};
use std::path::{Path, PathBuf};

/// What went wrong with an operator's command.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Randomness failed (for a generation's name).
    #[error(transparent)]
    Random(#[from] RandomError),
    /// A PostgreSQL database is backed up with PostgreSQL's own tools.
    #[error(
        "this server uses PostgreSQL: back it up with `pg_dump -Fc`, and after `pg_restore` \
         run `hearth-server admin restored` before starting any node (see the README)"
    )]
    PostgresBackup,
    /// The backup's path is taken.
    #[error("{} exists already: a backup never overwrites a file", .0.display())]
    Exists(PathBuf),
    /// The backup could not be written.
    #[error("cannot write the backup: {0}")]
    Io(#[from] std::io::Error),
}

/// The log generation a server starting on `storage` serves: the stored
/// one, or — when the database is a marked backup — a new one, begun first.
pub async fn log_generation(storage: &dyn Storage) -> Result<String, AdminError> {
    let instance = storage.instance().await?;
    if !instance.from_backup {
        return Ok(instance.generation);
    }
    let begun = new_generation(storage).await?;
    tracing::warn!(
        restores = begun.restores,
        "started on a backup: a new log generation begins, and every circle's numbers jump ahead"
    );
    Ok(begun.generation)
}

/// Begins a new generation (after a restore by other means than a marked
/// backup). No server may be running on the database.
pub async fn restored(storage: &dyn Storage) -> Result<Instance, AdminError> {
    new_generation(storage).await
}

/// A consistent copy of the SQLite database at `to`, made while the server
/// runs (`VACUUM INTO`: a snapshot in one read transaction, which writers do
/// not wait for), and marked as a backup. Returns its size in bytes.
pub async fn backup(config: &Config, to: &Path) -> Result<u64, AdminError> {
    if config.database_url.is_some() {
        return Err(AdminError::PostgresBackup);
    }
    if to.exists() {
        return Err(AdminError::Exists(to.to_path_buf()));
    }
    let path = to.to_str().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the backup's path is not UTF-8",
        )
    })?;
    let source = crate::storage::sqlite::SqliteStorage::open(&config.data_dir).await?;
    let copied = source.copy_into(path).await;
    crate::storage::Operations::close(&source).await;
    copied?;
    // The copy is a database of its own: marked there, never here.
    let copy = crate::storage::sqlite::SqliteStorage::open_file(to).await?;
    let marked = crate::storage::Operations::mark_as_backup(&copy).await;
    crate::storage::Operations::close(&copy).await;
    marked?;
    Ok(std::fs::metadata(to)?.len())
}

/// The configured database, for an operator's command (two connections
/// beside whatever servers run on it).
pub async fn open(config: &Config) -> Result<std::sync::Arc<dyn Storage>, AdminError> {
    let url = config
        .database_url
        .as_ref()
        .map(|u| secrecy::ExposeSecret::expose_secret(u).to_owned());
    Ok(crate::storage::connect(url.as_deref(), &config.data_dir, 2).await?)
}

async fn new_generation(storage: &dyn Storage) -> Result<Instance, AdminError> {
    let name = crate::crypto::hex(&random_bytes::<16>()?);
    Ok(storage.begin_generation(&name, GENERATION_JUMP).await?)
}

/// A one-time facilitator code, valid for `ttl_hours`: the code itself (to
/// pass on once, out of band; only its hash is kept) and when it expires.
pub async fn facilitator_code(
    storage: &dyn Storage,
    ttl_hours: u64,
) -> Result<(String, i64), AdminError> {
    let minted = crate::crypto::mint_token(crate::crypto::FACILITATOR_PREFIX)?;
    let now = crate::now();
    let expires_at = now + i64::try_from(ttl_hours).unwrap_or(24) * 3600;
    storage
        .insert_facilitator_code(&minted.hash, expires_at, now)
        .await?;
    Ok((minted.token, expires_at))
}
