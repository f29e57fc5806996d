//! Presence: which devices have a live socket on this node, written to the
//! database in gathered batches and renewed while the node lives, so no
//! node wakes a phone that another node is already talking to.

use super::*;

impl Push {
    /// Marks the device for the next record; returns that record's number.
    pub(super) fn presence_changed(&self, device: DeviceId) -> u64 {
        let batch = match self.presence_changed.lock() {
            Ok(mut changed) => {
                changed.0.insert(device);
                changed.1
            }
            Err(_) => 0,
        };
        self.presence_dirty.notify_one();
        batch
    }

    /// Keeps this node's word on its sockets: renews its life every third
    /// of the TTL, and records the sockets that opened or closed, as the hub
    /// says they are now: what changes within [`PRESENCE_GATHER`], or while
    /// one record is written, goes into one write. A node whose
    /// life lapsed (or that just started) records all its sockets afresh.
    pub(super) async fn keep_presence(self: Arc<Self>) {
        // The TTL is 2 to 600 s (config::BOUNDS).
        let every = Duration::from_secs(u64::try_from(self.presence_ttl).unwrap_or(15)) / 3;
        let mut renew_at = tokio::time::Instant::now();
        let mut afresh = true;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(renew_at) => {
                    renew_at = tokio::time::Instant::now() + every;
                    let now = crate::now();
                    match self.storage.renew_node(&self.node, now, now + self.presence_ttl).await {
                        Ok(alive) => afresh |= !alive,
                        Err(err) => tracing::warn!(error = %err, "could not renew this node's life"),
                    }
                }
                () = self.presence_dirty.notified() => {
                    tokio::time::sleep(PRESENCE_GATHER).await;
                }
            }
            let (changed, batch): (Vec<DeviceId>, u64) = match self.presence_changed.lock() {
                Ok(mut changed) => {
                    changed.1 += 1;
                    (changed.0.drain().collect(), changed.1 - 1)
                }
                Err(_) => (Vec::new(), 0),
            };
            if changed.is_empty() && !afresh {
                self.presence_recorded.send_replace(batch);
                continue;
            }
            let (present, absent): (Vec<DeviceId>, Vec<DeviceId>) = if afresh {
                (self.hub.connected_devices(), Vec::new())
            } else {
                changed.into_iter().partition(|d| self.hub.connected(d))
            };
            let alive_until = crate::now() + self.presence_ttl;
            metrics::counter!("hearth_push_presence_writes_total").increment(1);
            match self
                .storage
                .record_presence(&self.node, alive_until, &present, &absent, afresh)
                .await
            {
                Ok(()) => afresh = false,
                Err(err) => {
                    // Written whole at the next turn.
                    afresh = true;
                    tracing::warn!(error = %err, "could not record sockets' presence");
                }
            }
            self.presence_recorded.send_replace(batch);
        }
    }

    /// This node stops cleanly: its word on its sockets goes at once.
    pub async fn forget_node(&self) {
        if let Err(err) = self.storage.forget_node(&self.node).await {
            tracing::warn!(error = %err, "could not forget this node's presence");
        }
    }
}
