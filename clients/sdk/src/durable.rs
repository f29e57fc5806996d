//! Durability points for the client's database.
//!
//! `client.db` (the store's tables and openmls's) is in WAL mode with
//! `synchronous = NORMAL`: a commit lands in the write-ahead log without
//! waiting for the disk, so a killed app loses nothing committed, and only
//! a power cut could take back the last commits. Each blocking step of the
//! SDK (`Client::with`) is one transaction, and ends by syncing the log if
//! it changed — one disk sync per step — before the SDK next speaks to the
//! server: nothing is sent, uploaded or acknowledged on the strength of
//! state a power cut could take back.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One database file's write-ahead log.
#[derive(Debug)]
pub(crate) struct Wal {
    path: PathBuf,
    /// Length and modification time at the last sync: unchanged means
    /// nothing to sync.
    synced: Option<(u64, SystemTime)>,
}

impl Wal {
    /// The log of the database at `database`.
    pub fn of(database: &Path) -> Self {
        let mut name = database.as_os_str().to_owned();
        name.push("-wal");
        Self {
            path: PathBuf::from(name),
            synced: None,
        }
    }

    /// Makes every commit in the log durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            // No log: everything is in the database file, which SQLite
            // synced when it checkpointed.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(err),
        };
        let meta = file.metadata()?;
        let stamp = (meta.len(), meta.modified()?);
        if self.synced == Some(stamp) {
            return Ok(());
        }
        // fsync flushes the file, whichever descriptor wrote it.
        file.sync_data()?;
        self.synced = Some(stamp);
        Ok(())
    }
}
