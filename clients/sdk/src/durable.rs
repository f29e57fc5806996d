//! Durability points for the client's SQLite files.
//!
//! `client.db` and `mls.db` are in WAL mode with `synchronous = NORMAL`: a
//! commit lands in the write-ahead log without waiting for the disk, so a
//! killed app loses nothing committed, and only a power cut could take back
//! the last commits. openmls writes its state in several small transactions
//! per message; waiting for the disk at each made a member's catch-up mostly
//! waiting. Instead every blocking step of the SDK (`Client::with`) ends by
//! syncing each file's log — one disk sync per file that changed — before
//! the SDK next speaks to the server: nothing is sent, uploaded or
//! acknowledged on the strength of state a power cut could take back. The
//! MLS state is synced first, then what was decrypted with it, the order
//! that every commit-per-row version of the client had.

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
