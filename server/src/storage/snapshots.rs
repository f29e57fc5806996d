//! Schedule snapshots: one opaque blob per circle, replaced only by a
//! compare-and-swap on its version, so of two facilitators writing at once
//! exactly one wins.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::CircleId;

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
