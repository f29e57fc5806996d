//! Periodic removal of expired rows: challenges, link tokens, refresh tokens
//! and logins, KeyPackages, invites that expired or are used up, log
//! entries and Welcomes past their circle's retention, and circles nobody
//! is in any more. Each sweep also hands
//! memory the allocator no longer uses back to the system.

use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;

/// Sweeps every `every` until the task is aborted.
pub async fn run(storage: Arc<dyn Storage>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match storage.purge_expired(crate::now()).await {
            Ok(purged) => tracing::debug!(
                challenges = purged.challenges,
                link_tokens = purged.link_tokens,
                logins = purged.logins,
                key_packages = purged.key_packages,
                log_entries = purged.log_entries,
                invites = purged.invites,
                circles = purged.circles,
                "swept expired rows"
            ),
            Err(err) => tracing::warn!(error = %err, "sweep failed"),
        }
        release_free_memory();
    }
}

/// Hands memory the allocator holds but nobody uses back to the system.
///
/// glibc's allocator keeps freed memory in per-thread arenas and returns it
/// only from the top of each heap: a burst of connections (every client
/// reconnecting after a restart) leaves the server's resident size at the
/// burst's peak, freed pages trapped between live ones. `malloc_trim` gives
/// back every whole free page; it takes a few milliseconds once per sweep.
// The server's one `unsafe` block (the workspace denies them): a call into
// the C library that no safe crate wraps.
#[allow(unsafe_code)]
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `malloc_trim` takes no pointers and only rearranges the
        // allocator's own free lists under its locks; any argument is valid.
        let _ = unsafe { libc::malloc_trim(0) };
    }
}
