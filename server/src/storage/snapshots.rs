//! Schedule snapshots: one opaque blob per circle, replaced only by a
//! compare-and-swap on its version, so of two facilitators writing at once
//! exactly one wins.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::CircleId;

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// 1 for the first, one more for each replacement.
    pub version: i64,
    /// The opaque blob.
    pub data: Vec<u8>,
    /// Unix seconds it was written.
    pub updated_at: i64,
}

/// What became of a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// Stored as this version.
    Written {
        /// The new version.
        version: i64,
    },
    /// The stored version is not the one the write replaces.
    Conflict {
        /// The version stored now (0: none).
        current_version: i64,
    },
}

/// Circles' schedule snapshots.
#[async_trait]
pub trait SnapshotStore {
    /// Stores `data` as the circle's snapshot if the stored version is
    /// `replaces` (0: there is none yet). The circle must exist.
    async fn put_snapshot(
        &self,
        circle: &CircleId,
        replaces: i64,
        data: &[u8],
        now: i64,
    ) -> Result<SnapshotOutcome>;

    /// The circle's snapshot, if one was written.
    async fn snapshot(&self, circle: &CircleId) -> Result<Option<SnapshotRecord>>;
}

/// This area's half of the `Storage` implementation both databases share,
/// expanded by `impl_storage!` inside each backend's module.
macro_rules! snapshots_sql {
    () => {
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
                    let done = sqlx::query(sql::INSERT_SNAPSHOT)
                        .bind(circle.as_bytes())
                        .bind(data)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    (done.rows_affected() == 1).then_some(1)
                } else {
                    sqlx::query_scalar(sql::REPLACE_SNAPSHOT)
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
                let current: Option<i64> = sqlx::query_scalar(sql::SELECT_SNAPSHOT_VERSION)
                    .bind(circle.as_bytes())
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                Ok(SnapshotOutcome::Conflict {
                    current_version: current.unwrap_or(0),
                })
            }

            async fn snapshot(&self, circle: &CircleId) -> Result<Option<SnapshotRecord>> {
                let row = sqlx::query(sql::SELECT_SNAPSHOT)
                    .bind(circle.as_bytes())
                    .fetch_optional(self.reader())
                    .await?;
                row.map(|row| {
                    Ok(SnapshotRecord {
                        version: row.try_get("version")?,
                        data: row.try_get("data")?,
                        updated_at: row.try_get("updated_at")?,
                    })
                })
                .transpose()
            }
        }
    };
}

pub(crate) use snapshots_sql;
