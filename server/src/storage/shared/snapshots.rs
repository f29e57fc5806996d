//! Schedule snapshots. The half of `snapshots.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (circle_id, version, data, updated_at) \
     VALUES ($1, 1, $2, $3) ON CONFLICT (circle_id) DO NOTHING";

const REPLACE_SNAPSHOT: &str = "UPDATE snapshots SET version = version + 1, data = $3, \
     updated_at = $4 WHERE circle_id = $1 AND version = $2 RETURNING version";

const SELECT_SNAPSHOT: &str =
    "SELECT version, data, updated_at FROM snapshots WHERE circle_id = $1";

const SELECT_SNAPSHOT_VERSION: &str = "SELECT version FROM snapshots WHERE circle_id = $1";

#[async_trait]
impl SnapshotStore for This {
    async fn put_snapshot(
        &self,
        circle: &CircleId,
        replaces: i64,
        data: &[u8],
        now: i64,
    ) -> Result<SnapshotOutcome> {
        let mut tx = self.write().await?;
        let written = if replaces == 0 {
            let done = sqlx::query(INSERT_SNAPSHOT)
                .bind(circle.as_bytes())
                .bind(data)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            (done.rows_affected() == 1).then_some(1)
        } else {
            sqlx::query_scalar(REPLACE_SNAPSHOT)
                .bind(circle.as_bytes())
                .bind(replaces)
                .bind(data)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
        };
        if let Some(version) = written {
            tx.commit().await?;
            return Ok(SnapshotOutcome::Written { version });
        }
        let current: Option<i64> = sqlx::query_scalar(SELECT_SNAPSHOT_VERSION)
            .bind(circle.as_bytes())
            .fetch_optional(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(SnapshotOutcome::Conflict {
            current_version: current.unwrap_or(0),
        })
    }

    async fn snapshot(&self, circle: &CircleId) -> Result<Option<SnapshotRecord>> {
        Ok(sqlx::query_as::<_, SnapshotRecord>(SELECT_SNAPSHOT)
            .bind(circle.as_bytes())
            .fetch_optional(self.reader())
            .await?)
    }
}
