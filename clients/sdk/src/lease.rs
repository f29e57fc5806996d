//! One process at a time on a data directory: a lease in `lease.db`.
//!
//! A phone runs the same client in two processes at once — the app and its
//! Notification Service Extension (or an Android push worker). With MLS,
//! decrypting consumes a message key and encrypting advances a ratchet, so
//! two processes that load the same group state and both move it forward
//! either fail to decrypt what the other already did or, worse, encrypt two
//! messages under one nonce. Every blocking step of the SDK (`Client::with`)
//! therefore runs under this lease: it loads, changes and stores the MLS
//! state, the cursors and the history while no other process can, and the
//! next step — in either process — starts from what the last one stored.
//!
//! The lease is a row (holder, process id, until) in a database file of its
//! own, taken and given back in short transactions: no file lock is held
//! while the step runs, so an iOS process suspended while holding it is not
//! killed for holding a lock in a shared container, and a holder that dies —
//! a SIGKILL, a crash, an extension out of time — holds nothing for longer
//! than [`TTL`]; less where the system says its process is gone (a probe
//! that sends no signal; where the system will not say, the lease runs its
//! time). A process that finds the lease taken polls until it is free or its
//! wait runs out, then answers [`ClientError::Busy`] having changed
//! nothing.
//!
//! The file changes with every step and need not survive a power cut (a
//! lease that is lost is a lease that is free), so it is written without
//! waiting for the disk.

use crate::{ClientError, Result, random};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a lease lasts unless given back (or renewed by the next step
/// of the same holder): the longest a killed holder blocks the other
/// process. A step takes milliseconds; the longest (a page of a long
/// backlog) well under a second on a phone.
pub(crate) const TTL: Duration = Duration::from_secs(10);

/// How long a step waits for the lease by default: longer than [`TTL`], so
/// a holder that died is always outwaited.
pub(crate) const WAIT: Duration = Duration::from_secs(12);

/// How often a waiting process looks again.
const POLL: Duration = Duration::from_millis(5);

/// This process's handle on the data directory's lease.
pub(crate) struct Lease {
    conn: Connection,
    /// Who this client is to the other process: random, per opened client.
    holder: [u8; 16],
    /// Steps (and spans such as a token refresh) of this client holding it
    /// now: given back when the last one ends.
    depth: u32,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Lease {
    /// Opens (creating) `lease.db` in the data directory.
    pub fn open(dir: &Path) -> Result<Self> {
        let conn = Connection::open(dir.join("lease.db"))?;
        // The transactions that take the lease are microseconds long; a
        // process that meets one waits for it rather than failing.
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;
             CREATE TABLE IF NOT EXISTS lease (
                 one    INTEGER PRIMARY KEY CHECK (one = 1),
                 holder BLOB    NOT NULL,
                 pid    INTEGER NOT NULL,
                 until  INTEGER NOT NULL
             );",
        )?;
        Ok(Self {
            conn,
            holder: random()?,
            depth: 0,
        })
    }

    /// Takes the lease (or renews it, when this client holds it already),
    /// waiting up to `wait` for another process to give it back or for its
    /// lease to run out.
    pub fn take(&mut self, wait: Duration) -> Result<()> {
        let give_up = std::time::Instant::now() + wait;
        loop {
            if self.try_take()? {
                self.depth += 1;
                return Ok(());
            }
            if std::time::Instant::now() >= give_up {
                return Err(ClientError::Busy);
            }
            std::thread::sleep(POLL);
        }
    }

    /// One attempt: true when the lease is now this client's.
    fn try_take(&mut self) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let held: Option<(Vec<u8>, i64, i64)> = tx
            .query_row(
                "SELECT holder, pid, until FROM lease WHERE one = 1",
                (),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let free = match held {
            None => true,
            Some((holder, pid, until)) => {
                holder == self.holder || until <= now || process_is_gone(pid)
            }
        };
        if free {
            tx.execute(
                "INSERT INTO lease (one, holder, pid, until) VALUES (1, ?1, ?2, ?3) \
                 ON CONFLICT (one) DO UPDATE SET holder = excluded.holder, pid = excluded.pid, \
                 until = excluded.until",
                (
                    self.holder.as_slice(),
                    i64::from(std::process::id()),
                    now.saturating_add(ms(TTL)),
                ),
            )?;
        }
        tx.commit()?;
        Ok(free)
    }

    /// Gives back one hold; the lease itself when it was the last.
    pub fn give_back(&mut self) -> Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.depth == 0 {
            self.conn.execute(
                "DELETE FROM lease WHERE one = 1 AND holder = ?1",
                [self.holder.as_slice()],
            )?;
        }
        Ok(())
    }
}

/// Whether the system says there is no process `pid` (a killed holder). Not
/// sure means not gone: the lease then runs its time.
#[cfg(unix)]
fn process_is_gone(pid: i64) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // Our own process holds it under another client: alive.
    if pid == rustix::process::getpid() {
        return false;
    }
    matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(not(unix))]
fn process_is_gone(_pid: i64) -> bool {
    false
}
