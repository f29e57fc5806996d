//! Schedule snapshots: one blob per circle, replaced by compare-and-swap on
//! its version, gone with the circle's rows.

use super::{NOW, circle_of, device, open};
use anyhow::Result;
use hearth_protocol::CircleId;
use hearth_server::storage::{SnapshotOutcome, SnapshotRecord};
use hearth_tests::{Db, on_both_databases, rand_bytes};

on_both_databases!(
    a_snapshot_is_replaced_only_from_the_version_stored,
    of_racing_writers_exactly_one_replaces_each_version,
);

async fn a_snapshot_is_replaced_only_from_the_version_stored(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    assert!(storage.snapshot(&circle).await?.is_none(), "none yet");
    assert_eq!(
        storage.put_snapshot(&circle, 1, b"too early", NOW).await?,
        SnapshotOutcome::Conflict { current_version: 0 },
        "there is no version 1 to replace"
    );
    assert_eq!(
        storage.put_snapshot(&circle, 0, b"first", NOW).await?,
        SnapshotOutcome::Written { version: 1 }
    );
    assert_eq!(
        storage
            .put_snapshot(&circle, 0, b"again first", NOW)
            .await?,
        SnapshotOutcome::Conflict { current_version: 1 }
    );
    assert_eq!(
        storage.put_snapshot(&circle, 1, b"second", NOW + 5).await?,
        SnapshotOutcome::Written { version: 2 }
    );
    assert_eq!(
        storage.snapshot(&circle).await?,
        Some(SnapshotRecord {
            version: 2,
            data: b"second".to_vec(),
            updated_at: NOW + 5
        })
    );
    let made_up = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    assert!(storage.snapshot(&made_up).await?.is_none());
    Ok(())
}

async fn of_racing_writers_exactly_one_replaces_each_version(db: Db) -> Result<()> {
    let (_db, storage) = open(db).await?;
    let facilitator = device(storage.as_ref()).await?;
    let circle = circle_of(storage.as_ref(), facilitator).await?;
    storage.put_snapshot(&circle, 0, b"v1", NOW).await?;
    let writers = (0..8).map(|i| {
        let (storage, circle) = (storage.clone(), circle.clone());
        tokio::spawn(async move {
            let blob = format!("writer {i}");
            storage.put_snapshot(&circle, 1, blob.as_bytes(), NOW).await
        })
    });
    let mut won = 0;
    for writer in writers {
        match writer.await?? {
            SnapshotOutcome::Written { version } => {
                assert_eq!(version, 2);
                won += 1;
            }
            SnapshotOutcome::Conflict { current_version } => assert_eq!(current_version, 2),
        }
    }
    assert_eq!(won, 1, "exactly one of eight replaces version 1");
    Ok(())
}
