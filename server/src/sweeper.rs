//! Periodic removal of expired rows: challenges, link tokens, refresh tokens
//! and logins, KeyPackages, invites that expired or are used up, and log
//! entries and Welcomes past their circle's retention.

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
                "swept expired rows"
            ),
            Err(err) => tracing::warn!(error = %err, "sweep failed"),
        }
    }
}
