//! Push: targets, the wake queue, node presence. The half of `push.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const UPSERT_PUSH_TARGET: &str = "INSERT INTO push_targets \
     (device_id, sealed, registered_at, last_wake_at, dead_at, dead_reason) \
     VALUES ($1, $2, $3, NULL, NULL, NULL) ON CONFLICT (device_id) DO UPDATE SET \
     sealed = excluded.sealed, registered_at = excluded.registered_at, \
     last_wake_at = NULL, dead_at = NULL, dead_reason = NULL";

const SELECT_PUSH_TARGET: &str = "SELECT sealed, registered_at, last_wake_at, dead_at, \
     dead_reason FROM push_targets WHERE device_id = $1";

pub(super) const DELETE_PUSH_TARGET: &str = "DELETE FROM push_targets WHERE device_id = $1";

const SELECT_ROSTER_TO_WAKE: &str = "SELECT t.device_id FROM roster r \
     JOIN push_targets t ON t.device_id = r.device_id \
     WHERE r.circle_id = $1 AND t.dead_at IS NULL";

const SELECT_FACILITATORS_TO_WAKE: &str = "SELECT t.device_id FROM roster r \
     JOIN push_targets t ON t.device_id = r.device_id \
     WHERE r.circle_id = $1 AND r.role = 'facilitator' AND t.dead_at IS NULL";

const SELECT_DEVICE_TO_WAKE: &str = "SELECT t.device_id FROM push_targets t \
     WHERE t.device_id = $1 AND t.dead_at IS NULL";

const QUEUE_WAKE: &str = "INSERT INTO push_wakes \
     (device_id, due_at, attempts, coalesced, requeued, claimed_until) \
     SELECT $1, $2, 0, 0, 0, NULL WHERE EXISTS \
     (SELECT 1 FROM push_targets WHERE device_id = $1 AND dead_at IS NULL) \
     ON CONFLICT (device_id) DO UPDATE SET coalesced = push_wakes.coalesced + 1, \
     requeued = CASE WHEN push_wakes.claimed_until IS NULL THEN 0 ELSE 1 END \
     RETURNING coalesced";

/// Held wakes, due again, of devices a living node still vouches for: the
/// node renewed its life since the hold, with the socket open throughout.
const DROP_WAKES_OF_PRESENT: &str = "DELETE FROM push_wakes WHERE held = 1 \
     AND due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) AND device_id IN \
     (SELECT p.device_id FROM push_presence p JOIN push_nodes n ON n.node = p.node \
     WHERE n.alive_until > $1)";

/// Due wakes of devices that look connected are held (once): due again
/// when the nodes vouching for them must have renewed their lives.
const HOLD_WAKES_OF_PRESENT: &str = "UPDATE push_wakes SET held = 1, \
     due_at = (SELECT MAX(n.alive_until) FROM push_presence p JOIN push_nodes n \
     ON n.node = p.node WHERE p.device_id = push_wakes.device_id AND n.alive_until > $1) \
     WHERE held = 0 AND due_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1) \
     AND device_id IN (SELECT p.device_id FROM push_presence p JOIN push_nodes n \
     ON n.node = p.node WHERE n.alive_until > $1)";

const SELECT_SEALED_TARGET: &str =
    "SELECT sealed FROM push_targets WHERE device_id = $1 AND dead_at IS NULL";

const FINISH_WAKE: &str = "DELETE FROM push_wakes WHERE device_id = $1 AND requeued = 0";

const REQUEUE_WAKE: &str = "UPDATE push_wakes SET due_at = $2, attempts = 0, \
     requeued = 0, claimed_until = NULL, held = 0 WHERE device_id = $1";

const RECORD_WAKE: &str = "UPDATE push_targets SET last_wake_at = $2 WHERE device_id = $1";

const RETRY_WAKE: &str = "UPDATE push_wakes SET due_at = $2, claimed_until = NULL, \
     held = 0 WHERE device_id = $1";

const DROP_WAKE: &str = "DELETE FROM push_wakes WHERE device_id = $1";

const RELEASE_WAKE: &str =
    "UPDATE push_wakes SET claimed_until = NULL WHERE device_id = $1 AND claimed_until = $2";

const KILL_PUSH_TARGET: &str = "UPDATE push_targets SET dead_at = $2, dead_reason = $3 \
     WHERE device_id = $1 AND dead_at IS NULL";

const NEXT_WAKE_DUE: &str = "SELECT MIN(CASE WHEN claimed_until IS NULL THEN due_at \
     WHEN claimed_until > due_at THEN claimed_until ELSE due_at END) FROM push_wakes";

const WAKE_QUEUE: &str = "SELECT COUNT(*), \
     COALESCE(SUM(CASE WHEN due_at <= $1 THEN 1 ELSE 0 END), 0), \
     MIN(CASE WHEN due_at <= $1 THEN due_at END) FROM push_wakes";

const RANDOM_LIVE_TARGET: &str =
    "SELECT device_id FROM push_targets WHERE dead_at IS NULL ORDER BY RANDOM() LIMIT 1";

/// A device that was deleted meanwhile has no presence (and no error).
const INSERT_PRESENCE: &str = "INSERT INTO push_presence (device_id, node) \
     SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $1) \
     ON CONFLICT (device_id, node) DO NOTHING";

const DELETE_PRESENCE: &str = "DELETE FROM push_presence WHERE device_id = $1 AND node = $2";

const DELETE_NODE_PRESENCE: &str = "DELETE FROM push_presence WHERE node = $1";

const UPSERT_NODE: &str = "INSERT INTO push_nodes (node, alive_until) VALUES ($1, $2) \
     ON CONFLICT (node) DO UPDATE SET alive_until = excluded.alive_until";

/// Only a node still alive is extended: one that lapsed records its sockets
/// again.
const RENEW_NODE: &str =
    "UPDATE push_nodes SET alive_until = $3 WHERE node = $1 AND alive_until > $2";

const DELETE_NODE: &str = "DELETE FROM push_nodes WHERE node = $1";

const PURGE_DEAD_PRESENCE: &str = "DELETE FROM push_presence WHERE node NOT IN \
     (SELECT node FROM push_nodes WHERE alive_until > $1)";

const PURGE_DEAD_NODES: &str = "DELETE FROM push_nodes WHERE alive_until <= $1";

#[async_trait]
impl PushStore for This {
    async fn put_push_target(&self, device: DeviceId, sealed: &[u8], now: i64) -> Result<()> {
        sqlx::query(UPSERT_PUSH_TARGET)
            .bind(device.to_string())
            .bind(sealed)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn push_target(&self, device: DeviceId) -> Result<Option<PushTargetRecord>> {
        Ok(sqlx::query_as::<_, PushTargetRecord>(SELECT_PUSH_TARGET)
            .bind(device.to_string())
            .fetch_optional(self.reader())
            .await?)
    }

    async fn delete_push_target(&self, device: DeviceId) -> Result<bool> {
        let done = sqlx::query(DELETE_PUSH_TARGET)
            .bind(device.to_string())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn wake_candidates(&self, wakes: &[WakeFor]) -> Result<Vec<DeviceId>> {
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        for wake in wakes {
            let (query, except) = match wake {
                WakeFor::Circle { circle, except } => (
                    sqlx::query_scalar(SELECT_ROSTER_TO_WAKE).bind(circle.as_bytes()),
                    *except,
                ),
                WakeFor::Facilitators(circle) => (
                    sqlx::query_scalar(SELECT_FACILITATORS_TO_WAKE).bind(circle.as_bytes()),
                    None,
                ),
                WakeFor::Device(device) => (
                    sqlx::query_scalar(SELECT_DEVICE_TO_WAKE).bind(device.to_string()),
                    None,
                ),
            };
            let ids: Vec<String> = query.fetch_all(self.reader()).await?;
            for id in ids {
                let device_id = parse_device_id(&id)?;
                if Some(device_id) == except || !seen.insert(device_id) {
                    continue;
                }
                found.push(device_id);
            }
        }
        Ok(found)
    }

    async fn queue_wakes(&self, wakes: &[(DeviceId, i64)]) -> Result<u64> {
        if wakes.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let mut new = 0;
        for (device, due_at) in wakes {
            // What the row says after: a new one has folded nothing
            // in; none at all means the target is dead or gone.
            let coalesced: Option<i64> = sqlx::query_scalar(QUEUE_WAKE)
                .bind(device.to_string())
                .bind(*due_at)
                .fetch_optional(&mut *tx)
                .await?;
            if coalesced == Some(0) {
                new += 1;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    async fn claim_wakes(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        interval: i64,
    ) -> Result<Vec<ClaimedWake>> {
        let mut tx = self.write().await?;
        sqlx::query(DROP_WAKES_OF_PRESENT)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(HOLD_WAKES_OF_PRESENT)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(<This as SqlBackend>::POSTPONE_WAKES)
            .bind(now)
            .bind(interval)
            .execute(&mut *tx)
            .await?;
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(<This as SqlBackend>::CLAIM_WAKES)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (id, attempts, coalesced) in rows {
            let device_id = parse_device_id(&id)?;
            let sealed: Option<Vec<u8>> = sqlx::query_scalar(SELECT_SEALED_TARGET)
                .bind(device_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            match sealed {
                Some(sealed) => claimed.push(ClaimedWake {
                    device_id,
                    attempts,
                    coalesced,
                    sealed,
                }),
                // Marked dead since it was queued.
                None => {
                    sqlx::query(DROP_WAKE)
                        .bind(device_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn settle_wake(&self, device: DeviceId, outcome: &WakeOutcome) -> Result<()> {
        let device = device.to_string();
        let mut tx = self.write().await?;
        match outcome {
            WakeOutcome::Sent { now, next_due } => {
                sqlx::query(RECORD_WAKE)
                    .bind(&device)
                    .bind(*now)
                    .execute(&mut *tx)
                    .await?;
                let finished = sqlx::query(FINISH_WAKE)
                    .bind(&device)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if finished == 0 {
                    sqlx::query(REQUEUE_WAKE)
                        .bind(&device)
                        .bind(*next_due)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            WakeOutcome::Retry { at } => {
                sqlx::query(RETRY_WAKE)
                    .bind(&device)
                    .bind(*at)
                    .execute(&mut *tx)
                    .await?;
            }
            WakeOutcome::Dropped => {
                sqlx::query(DROP_WAKE)
                    .bind(&device)
                    .execute(&mut *tx)
                    .await?;
            }
            WakeOutcome::Gone { now, reason } => {
                sqlx::query(KILL_PUSH_TARGET)
                    .bind(&device)
                    .bind(*now)
                    .bind(*reason)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(DROP_WAKE)
                    .bind(&device)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn next_wake_due(&self) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(NEXT_WAKE_DUE)
            .fetch_one(self.reader())
            .await?)
    }

    async fn wake_queue(&self, now: i64) -> Result<WakeQueue> {
        let (queued, due, oldest_due_at): (i64, i64, Option<i64>) = sqlx::query_as(WAKE_QUEUE)
            .bind(now)
            .fetch_one(self.reader())
            .await?;
        Ok(WakeQueue {
            queued,
            due,
            oldest_due_at,
        })
    }

    async fn random_push_device(&self) -> Result<Option<DeviceId>> {
        let id: Option<String> = sqlx::query_scalar(RANDOM_LIVE_TARGET)
            .fetch_optional(self.reader())
            .await?;
        id.as_deref().map(parse_device_id).transpose()
    }

    async fn record_presence(
        &self,
        node: &str,
        alive_until: i64,
        present: &[DeviceId],
        absent: &[DeviceId],
        replace: bool,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(UPSERT_NODE)
            .bind(node)
            .bind(alive_until)
            .execute(&mut *tx)
            .await?;
        if replace {
            sqlx::query(DELETE_NODE_PRESENCE)
                .bind(node)
                .execute(&mut *tx)
                .await?;
        }
        for device in present {
            sqlx::query(INSERT_PRESENCE)
                .bind(device.to_string())
                .bind(node)
                .execute(&mut *tx)
                .await?;
        }
        for device in absent {
            sqlx::query(DELETE_PRESENCE)
                .bind(device.to_string())
                .bind(node)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn renew_node(&self, node: &str, now: i64, alive_until: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let renewed = sqlx::query(RENEW_NODE)
            .bind(node)
            .bind(now)
            .bind(alive_until)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        sqlx::query(PURGE_DEAD_PRESENCE)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(PURGE_DEAD_NODES)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(renewed)
    }

    async fn release_wakes(&self, claims: &[(DeviceId, i64)]) -> Result<u64> {
        if claims.is_empty() {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        let mut released = 0;
        for (device, until) in claims {
            released += sqlx::query(RELEASE_WAKE)
                .bind(device.to_string())
                .bind(*until)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(released)
    }

    async fn forget_node(&self, node: &str) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(DELETE_NODE_PRESENCE)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        sqlx::query(DELETE_NODE)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
