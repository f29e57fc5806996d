//! Sending wakes: the queue of wakes from the delivery core becomes rows in
//! the database (coalesced per device, delayed at random), and a loop on
//! every node claims due rows, opens each target and calls its transport,
//! with retries and backoff; decoys go to random devices when configured.

use super::*;

impl Push {
    /// Runs the queue, the sender, presence and decoys until the future is
    /// dropped.
    /// Each runs as its own task under [`supervised`]: one that panics is
    /// logged, counted and started again, so a bug in one never silently
    /// stops push for the process.
    pub async fn run(self: Arc<Self>, queue: WakeQueue) {
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        tokio::join!(
            supervised("queue", {
                let push = self.clone();
                move || push.clone().queue_wakes(queue.clone())
            }),
            supervised("send", {
                let push = self.clone();
                move || push.clone().send_wakes()
            }),
            supervised("presence", {
                let push = self.clone();
                move || push.clone().keep_presence()
            }),
            supervised("decoys", {
                let push = self.clone();
                move || push.clone().send_decoys()
            }),
        );
    }

    fn random_below(bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let bytes: [u8; 8] = crate::crypto::random_bytes().unwrap_or_default();
        u64::from_le_bytes(bytes) % (bound + 1)
    }

    async fn queue_wakes(self: Arc<Self>, queue: Arc<tokio::sync::Mutex<WakeQueue>>) {
        let mut queue = queue.lock().await;
        let mut batch = Vec::new();
        while queue.0.recv_many(&mut batch, 512).await > 0 {
            let wakes: Vec<WakeFor> = batch
                .drain(..)
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let now = crate::now();
            let candidates = match self.storage.wake_candidates(&wakes).await {
                Ok(candidates) => candidates,
                Err(err) => {
                    tracing::warn!(error = %err, "could not find whom to wake");
                    continue;
                }
            };
            // A socket on this node reads what is new: no wake. Sockets on
            // other nodes are weighed when the wake falls due.
            let candidates = candidates
                .into_iter()
                .filter(|device| !self.hub.connected(device));
            // The interval since a device's last wake is enforced where wakes
            // are claimed (`POSTPONE_WAKES`), however they were queued.
            let due: Vec<(DeviceId, i64)> = candidates
                .into_iter()
                .map(|device| {
                    let delay = i64::try_from(Self::random_below(self.max_delay)).unwrap_or(0);
                    (device, now + delay)
                })
                .collect();
            match self.storage.queue_wakes(&due).await {
                Ok(new) => {
                    let folded = u64::try_from(due.len()).unwrap_or(0).saturating_sub(new);
                    metrics::counter!("hearth_push_wakes_coalesced_total").increment(folded);
                    if new > 0 {
                        self.queued.notify_one();
                    }
                }
                Err(err) => tracing::warn!(error = %err, "could not queue wakes"),
            }
        }
    }

    async fn send_wakes(self: Arc<Self>) {
        loop {
            let now = crate::now();
            let claimed = match self
                .storage
                .claim_wakes(now, now + LEASE_SECS, CLAIM_AT_MOST, self.interval)
                .await
            {
                Ok(claimed) => claimed,
                Err(err) => {
                    tracing::warn!(error = %err, "could not claim wakes");
                    Vec::new()
                }
            };
            let full = i64::try_from(claimed.len()).unwrap_or(0) >= CLAIM_AT_MOST;
            if let Ok(mut claims) = self.claims.lock() {
                claims.extend(claimed.iter().map(|w| (w.device_id, now + LEASE_SECS)));
            }
            let sends = claimed.into_iter().map(|wake| {
                let push = self.clone();
                async move {
                    let outcome = push
                        .send_one(wake.device_id, &wake.sealed, wake.attempts)
                        .await;
                    if let Err(err) = push.storage.settle_wake(wake.device_id, &outcome).await {
                        tracing::warn!(error = %err, "could not record a wake's outcome");
                    }
                    if let Ok(mut claims) = push.claims.lock() {
                        claims.remove(&wake.device_id);
                    }
                }
            });
            futures_util::future::join_all(sends).await;
            if full {
                continue;
            }
            let next = match self.storage.next_wake_due().await {
                Ok(next) => next,
                Err(err) => {
                    tracing::warn!(error = %err, "could not read the wake queue");
                    None
                }
            };
            let now = crate::now();
            let wait = next
                .map_or(LOOK_AT_LEAST_EVERY_SECS, |due| due - now)
                .clamp(0, LOOK_AT_LEAST_EVERY_SECS);
            // Unix seconds are coarse: a wake due "now" may be due at the
            // next second's start, so never spin.
            let wait = Duration::from_secs(u64::try_from(wait).unwrap_or(0))
                .max(Duration::from_millis(250));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.queued.notified() => {}
            }
        }
    }

    /// Gives back the wakes this node claimed and did not settle, once its
    /// sender has stopped (a graceful stop): another node sends them now
    /// instead of after their lease.
    pub async fn release_claims(&self) {
        let claims: Vec<(DeviceId, i64)> = match self.claims.lock() {
            Ok(mut claims) => claims.drain().collect(),
            Err(_) => return,
        };
        if let Err(err) = self.storage.release_wakes(&claims).await {
            tracing::warn!(error = %err, "could not give back claimed wakes");
        }
    }

    async fn send_one(&self, device: DeviceId, sealed: &[u8], attempts: i64) -> WakeOutcome {
        let now = crate::now();
        let target = match self.sealer.open(device, sealed) {
            Ok(target) => target,
            Err(err) => {
                tracing::error!(error = %err, "a push target does not open; its wake is dropped");
                return WakeOutcome::Dropped;
            }
        };
        let kind = target.kind().as_str();
        let failed = |reason: &'static str| {
            metrics::counter!("hearth_push_wakes_failed_total", "kind" => kind, "reason" => reason)
                .increment(1);
        };
        let Some(provider) = self.provider(target.kind()) else {
            failed("unconfigured");
            return WakeOutcome::Dropped;
        };
        match provider.wake(&target, now).await {
            Delivery::Sent => {
                metrics::counter!("hearth_push_wakes_sent_total", "kind" => kind).increment(1);
                let now = crate::now();
                WakeOutcome::Sent {
                    now,
                    next_due: now + self.interval,
                }
            }
            Delivery::Gone(reason) => {
                metrics::counter!(
                    "hearth_push_targets_dead_total",
                    "kind" => kind,
                    "reason" => reason.as_str()
                )
                .increment(1);
                tracing::info!(kind, "a push target is gone; marked dead");
                WakeOutcome::Gone {
                    now,
                    reason: reason.as_str(),
                }
            }
            Delivery::Retry(after) if attempts < MAX_ATTEMPTS => {
                failed("retry");
                let backoff = after.map_or_else(
                    || 5_i64.saturating_mul(1 << attempts.clamp(0, 20)),
                    |d| i64::try_from(d.as_secs()).unwrap_or(MAX_BACKOFF_SECS),
                );
                WakeOutcome::Retry {
                    at: now + backoff.clamp(1, MAX_BACKOFF_SECS),
                }
            }
            Delivery::Retry(_) => {
                failed("gave_up");
                tracing::warn!(kind, attempts, "a wake failed too often; dropped");
                WakeOutcome::Dropped
            }
            Delivery::Failed(why) => {
                failed("refused");
                tracing::warn!(kind, why, "a wake cannot be sent; dropped");
                WakeOutcome::Dropped
            }
        }
    }

    /// Decoys at random moments (a Poisson process of the configured rate),
    /// each to a random registered device, through the same queue as every
    /// other wake.
    async fn send_decoys(self: Arc<Self>) {
        if self.decoys_per_hour == 0 {
            return std::future::pending().await;
        }
        let mean = 3600.0 / f64::from(self.decoys_per_hour);
        loop {
            let uniform = (Self::random_below(1 << 52) as f64 + 1.0) / ((1u64 << 52) as f64 + 2.0);
            let wait = (-uniform.ln() * mean).min(24.0 * 3600.0);
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            match self.storage.random_push_device().await {
                Ok(Some(device)) => {
                    metrics::counter!("hearth_push_decoys_total").increment(1);
                    self.wake(WakeFor::Device(device));
                }
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "could not pick a decoy"),
            }
        }
    }
}
