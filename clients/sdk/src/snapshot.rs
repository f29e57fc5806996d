//! The circle's schedule snapshot: a member who joins late cannot decrypt
//! what came before them, so a facilitator's client keeps the calendar's
//! facilitator items (series, changes, the agreement) and who accepted the
//! agreement in the circle's snapshot slot, as an MLS application message
//! at the current epoch, padded to a power of two of at least 4 KiB. It
//! rewrites it after every
//! commit it makes that adds someone and whenever it changes the calendar;
//! a lost race (`snapshot_conflict`) reads the winner's and writes again.

use crate::store::CalendarItem;
use crate::sync::FollowUps;
use crate::{ATTEMPTS, Client, ClientError, Result, load};
use hearth_protocol::circles::{PutSnapshot, Snapshot};
use hearth_protocol::content::{Content, Envelope};
use hearth_protocol::mls::{self as profile, Received};
use hearth_protocol::schedule::SnapshotItem;
use hearth_protocol::{CircleId, DeviceId, ErrorCode};

/// Snapshots are padded to a power of two of at least this many bytes.
const PAD_TO: usize = 4096;

/// What a snapshot carries: what a facilitator said (series, changes, the
/// agreement), who accepted the agreement, and the RSVPs, which a newcomer
/// could not otherwise know (so everyone counts who is coming, and who
/// missed a session, alike).
fn in_snapshot(content: &Content) -> bool {
    content.facilitators_only()
        || matches!(
            content,
            Content::AgreementAccepted { .. } | Content::Rsvp { .. }
        )
}

/// The snapshot's plaintext, padded.
fn snapshot_plaintext(items: Vec<CalendarItem>) -> Vec<u8> {
    let items = items
        .into_iter()
        .filter(|i| in_snapshot(&i.content))
        .map(|i| SnapshotItem {
            sender: i.sender,
            seq: i.seq,
            content: i.content,
        })
        .collect();
    let mut snapshot = Envelope::new(Content::ScheduleSnapshot {
        items,
        padding: String::new(),
    });
    let bare = snapshot.to_bytes().len();
    if let Content::ScheduleSnapshot { padding, .. } = &mut snapshot.content {
        *padding = " ".repeat(bare.next_power_of_two().max(PAD_TO) - bare);
    }
    snapshot.to_bytes()
}

impl Client {
    /// Rewrites the snapshot from this device's calendar items, if this
    /// device is a facilitator of the circle.
    pub(crate) async fn write_snapshot(&self, circle: &CircleId) -> Result<FollowUps> {
        let Some(facilitators) = self.facilitating(circle).await? else {
            return Ok(FollowUps::default());
        };
        let api = self.authorized().await?;
        // The version this device last read or wrote is tried first; a
        // conflict (another facilitator wrote since) reads and merges theirs.
        let circle_id = circle.clone();
        let mut replaces = self
            .with(move |s| s.store.snapshot_read(&circle_id))
            .await?;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                replaces = match api.snapshot(circle).await {
                    Ok(stored) => {
                        let version = stored.version;
                        self.merge_snapshot(circle, stored, &facilitators).await?;
                        version
                    }
                    Err(err) if err.code() == Some(ErrorCode::NotFound) => 0,
                    Err(err) => return Err(err),
                };
            }
            let circle_id = circle.clone();
            let (_, signer) = self.signer().await?;
            let snapshot = self
                .with(move |s| {
                    let plaintext = snapshot_plaintext(s.store.calendar_items(&circle_id)?);
                    let mut group = load(s, &circle_id)?;
                    let message = profile::encrypt(&mut group, &s.provider, &signer, &plaintext)?;
                    Ok(profile::wire(&message)?)
                })
                .await?;
            let body = PutSnapshot {
                version: replaces,
                snapshot,
            };
            match api.put_snapshot(circle, &body).await {
                Ok(written) => {
                    // Our own message: nothing for us to read in it.
                    let circle = circle.clone();
                    self.with(move |s| s.store.set_snapshot_read(&circle, written.version))
                        .await?;
                    return Ok(FollowUps::default());
                }
                Err(err) if err.code() == Some(ErrorCode::SnapshotConflict) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(ClientError::Contended)
    }

    /// Reads the circle's snapshot when there is a newer one than this
    /// device has read, keeping its items.
    pub(crate) async fn read_snapshot(
        &self,
        circle: &CircleId,
        facilitators: &[DeviceId],
    ) -> Result<()> {
        match self.authorized().await?.snapshot(circle).await {
            Ok(stored) => self.merge_snapshot(circle, stored, facilitators).await,
            Err(err) if err.code() == Some(ErrorCode::NotFound) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Keeps the items of a snapshot a facilitator wrote. A snapshot this
    /// device cannot decrypt (its own, or from before it joined) is passed
    /// over for good: it never will.
    async fn merge_snapshot(
        &self,
        circle: &CircleId,
        stored: Snapshot,
        facilitators: &[DeviceId],
    ) -> Result<()> {
        let (circle, facilitators) = (circle.clone(), facilitators.to_vec());
        self.with(move |s| {
            if stored.version <= s.store.snapshot_read(&circle)? {
                return Ok(());
            }
            s.store.set_snapshot_read(&circle, stored.version)?;
            let mut group = load(s, &circle)?;
            let received = profile::receive(&mut group, &s.provider, stored.snapshot.as_slice());
            let Ok(Received::Application {
                plaintext,
                sender: Some(sender),
            }) = received
            else {
                return Ok(());
            };
            if !facilitators.contains(&sender) {
                return Ok(());
            }
            if let Content::ScheduleSnapshot { items, .. } =
                Envelope::from_bytes(&plaintext).content
            {
                for item in items.into_iter().filter(|i| in_snapshot(&i.content)) {
                    let item = CalendarItem {
                        seq: item.seq,
                        sender: item.sender,
                        content: item.content,
                    };
                    s.store.add_calendar_item(&circle, &item)?;
                }
            }
            Ok(())
        })
        .await
    }
}
