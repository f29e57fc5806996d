//! Reading a circle's log: merging commits, decrypting messages, moving the
//! cursor, acknowledging. And the driver for what that leaves to do.
//!
//! Processing never sends or commits by itself. It returns [`FollowUp`]s —
//! "someone joined: share our profile", "others committed: check the tree
//! against the roster" — and [`Client::drive`] runs them one after another.
//! A follow-up may find more work (a commit races, catching up finds another
//! join); it goes on the same queue. Nothing recurses.

use crate::messages::Message;
use crate::store::Gone;
use crate::{Client, ClientError, Result, load};
use hearth_protocol::circles::{EntryKind, LogEntry};
use hearth_protocol::mls::{self as profile, MlsError, Received};
use hearth_protocol::{CircleId, DeviceId, ErrorCode};
use openmls::prelude::OpenMlsProvider as _;
use std::collections::VecDeque;

/// At most this many follow-ups per driven operation: a circle that keeps
/// changing faster than this is reported as `Contended`.
const MAX_FOLLOW_UPS: usize = 64;

/// Work that processing the log leaves for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FollowUp {
    /// Someone joined (or we did): tell the circle who this is.
    ShareProfile(CircleId),
    /// Others committed: this client removes MLS leaves of devices that left
    /// the roster.
    Reconcile(CircleId),
    /// Someone joined (by anyone's commit) or the calendar changed: a
    /// facilitator's client rewrites the circle's schedule snapshot at the
    /// current epoch.
    WriteSnapshot(CircleId),
    /// This account may have devices that are not in the circle yet (a
    /// device linked since): this device adds them.
    AddOwnDevices(CircleId),
}

impl FollowUp {
    /// The circle it concerns.
    pub fn circle(&self) -> &CircleId {
        match self {
            Self::ShareProfile(circle)
            | Self::Reconcile(circle)
            | Self::WriteSnapshot(circle)
            | Self::AddOwnDevices(circle) => circle,
        }
    }
}

/// A queue of follow-ups without repeats.
#[derive(Debug, Default)]
pub(crate) struct FollowUps(VecDeque<FollowUp>);

impl FollowUps {
    /// Queues one, unless it is queued already.
    pub fn push(&mut self, follow_up: FollowUp) {
        if !self.0.contains(&follow_up) {
            self.0.push_back(follow_up);
        }
    }

    /// Queues all of `other`'s.
    pub fn extend(&mut self, other: FollowUps) {
        for follow_up in other.0 {
            self.push(follow_up);
        }
    }

    /// Whether none are queued.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only those for which `keep` holds.
    pub fn retain(&mut self, keep: impl FnMut(&FollowUp) -> bool) {
        self.0.retain(keep);
    }
}

/// What catching up with a circle brought.
#[derive(Debug, Default)]
pub(crate) struct CaughtUp {
    /// New messages, in order, stored.
    pub messages: Vec<Message>,
    /// What is left to do.
    pub follow_ups: FollowUps,
}

/// Whether this device is among the circle's facilitators as it remembers
/// them (no request).
fn facilitating(s: &crate::State, circle: &CircleId) -> Result<bool> {
    let Some(me) = s.store.device()? else {
        return Ok(false);
    };
    Ok(s.store.facilitators(circle)?.contains(&me.device_id))
}

impl Client {
    /// Fetches everything new in a circle, in order: merges commits, decrypts
    /// and stores messages, acknowledges, then does what that calls for
    /// (sharing this member's profile with newcomers), and keeps the circle
    /// in line with the account and the roster: this account's devices that
    /// are not in it yet are added, and the leaves of devices no longer on
    /// the roster (members who left, revoked devices, deleted accounts) are
    /// removed. Returns the new messages.
    ///
    /// A circle this device was removed from answers
    /// [`ClientError::RemovedFromCircle`] (once noticed, also as
    /// [`crate::Event::Removed`]); its history stays readable.
    pub async fn sync(&self, circle: &CircleId) -> Result<Vec<Message>> {
        let mut caught = self.catch_up(circle).await?;
        caught
            .follow_ups
            .push(FollowUp::AddOwnDevices(circle.clone()));
        caught.follow_ups.push(FollowUp::Reconcile(circle.clone()));
        self.drive(caught.follow_ups).await?;
        Ok(caught.messages)
    }

    /// Runs follow-ups until none are left.
    pub(crate) async fn drive(&self, mut work: FollowUps) -> Result<()> {
        let mut budget = MAX_FOLLOW_UPS;
        while let Some(next) = work.0.pop_front() {
            budget = budget.checked_sub(1).ok_or(ClientError::Contended)?;
            let more = match next {
                FollowUp::ShareProfile(circle) => self.share_profile(&circle).await?,
                FollowUp::Reconcile(circle) => self.reconcile(&circle).await?,
                FollowUp::WriteSnapshot(circle) => self.write_snapshot(&circle).await?,
                FollowUp::AddOwnDevices(circle) => self.add_own_devices(&circle).await?,
            };
            work.extend(more);
        }
        Ok(())
    }

    /// Reads the log after the stored cursor, page by page, processing each
    /// entry, and acknowledges. A device whose MLS state is missing or out of
    /// step rejoins by external commit and reads on from there.
    pub(crate) async fn catch_up(&self, circle: &CircleId) -> Result<CaughtUp> {
        let circle_id = circle.clone();
        let (stored, gone, has_group) = self
            .with(move |s| {
                Ok((
                    s.store.cursor(&circle_id)?,
                    s.store.gone(&circle_id)?,
                    load(s, &circle_id).is_ok(),
                ))
            })
            .await?;
        match gone {
            Some(Gone::Removed) => return Err(ClientError::RemovedFromCircle),
            Some(Gone::Left) => return Err(ClientError::LeftCircle),
            None => {}
        }
        let mut cursor = stored.ok_or(ClientError::UnknownCircle)?;
        let started_at = cursor;
        if !has_group {
            cursor = match self.rejoin(circle).await {
                Err(err) if err.code() == Some(ErrorCode::NotFound) => {
                    self.gone(circle, Gone::Removed).await?;
                    return Err(ClientError::RemovedFromCircle);
                }
                other => other?,
            };
        }
        let api = self.authorized().await?;
        let mut caught = CaughtUp::default();
        loop {
            let page = match api.read_log(circle, cursor).await {
                Ok(page) => page,
                // The server no longer has this device on the roster: a
                // facilitator removed it, or it was revoked.
                Err(err) if err.code() == Some(ErrorCode::NotFound) => {
                    self.gone(circle, Gone::Removed).await?;
                    return Err(ClientError::RemovedFromCircle);
                }
                Err(err) => return Err(err),
            };
            let more = page.more;
            match self.process_entries(circle, page.entries).await {
                Ok(processed) => {
                    caught.messages.extend(processed.messages);
                    caught.follow_ups.extend(processed.follow_ups);
                    cursor = cursor.max(page.next_after);
                }
                Err(ClientError::OutOfStep) => {
                    cursor = self.rejoin(circle).await?;
                    continue;
                }
                Err(err) => return Err(err),
            }
            if !more {
                break;
            }
        }
        // Acknowledged only when this read moved the cursor: with nothing
        // new there is nothing to say (what the live socket processed, it
        // acknowledged itself).
        if cursor > started_at {
            api.ack(circle, cursor).await?;
        }
        Ok(caught)
    }

    /// Processes log entries in order: merges commits, decrypts messages and
    /// applies their content, moves the cursor. Entries at or below the
    /// stored cursor were processed already (by `sync` or the live stream)
    /// and are skipped, so the two can run side by side. A commit that will
    /// not process stops it with `OutOfStep`.
    pub(crate) async fn process_entries(
        &self,
        circle: &CircleId,
        entries: Vec<LogEntry>,
    ) -> Result<CaughtUp> {
        let circle_id = circle.clone();
        self.with(move |s| {
            let me = s
                .store
                .device()?
                .ok_or(ClientError::NotRegistered)?
                .device_id;
            let done = s.store.cursor(&circle_id)?.unwrap_or(0);
            let mut group = load(s, &circle_id)?;
            let mut caught = CaughtUp::default();
            let mut last = None;
            let mut new_epoch = false;
            for entry in entries.into_iter().filter(|e| e.seq > done) {
                last = Some(entry.seq);
                // Our own commits were merged when accepted; our own messages
                // were stored when sent.
                if entry.sender == me {
                    continue;
                }
                let received =
                    match profile::receive(&mut group, &s.provider, entry.ciphertext.as_slice()) {
                        Ok(received) => received,
                        // A commit we cannot process means our state no longer
                        // matches the circle's: stop here; the caller rejoins.
                        Err(MlsError::Unprocessable(_)) if entry.kind == EntryKind::Commit => {
                            return Err(ClientError::OutOfStep);
                        }
                        // A message we cannot decrypt (from before we joined, or
                        // of an epoch too far behind): skip it.
                        Err(MlsError::Unprocessable(_)) => continue,
                        Err(err) => return Err(err.into()),
                    };
                match received {
                    Received::Application { plaintext, sender } => {
                        let mut message = Message::received(&entry, &plaintext);
                        // MLS says who signed it; the server's claim is only
                        // a hint.
                        message.sender = sender.unwrap_or(message.sender);
                        caught
                            .messages
                            .extend(crate::content::apply(&s.store, &circle_id, message)?);
                    }
                    Received::Commit { added_members } => {
                        new_epoch = true;
                        if added_members {
                            caught
                                .follow_ups
                                .push(FollowUp::ShareProfile(circle_id.clone()));
                            // Whoever added them (a member bringing in a new
                            // phone, say), the newcomers need the calendar at
                            // the new epoch: a facilitator's client writes it.
                            if facilitating(s, &circle_id)? {
                                caught
                                    .follow_ups
                                    .push(FollowUp::WriteSnapshot(circle_id.clone()));
                            }
                        }
                        caught
                            .follow_ups
                            .push(FollowUp::Reconcile(circle_id.clone()));
                    }
                    Received::Other => {}
                }
            }
            if let Some(last) = last {
                s.store.set_cursor(&circle_id, last)?;
            }
            if new_epoch {
                s.calls
                    .rekey(circle_id.as_bytes(), &group, s.provider.crypto())?;
            }
            Ok(caught)
        })
        .await
    }

    /// Any member's client keeps the MLS group in line with the server's
    /// roster: leaves of devices that left the roster (a revoked device, a
    /// member who left, an account that was deleted) are removed with a
    /// commit, so they stop deriving the circle's keys (messages and call
    /// media alike) as soon as anyone in the circle is online, not when a
    /// facilitator next is. Such a commit declares no roster change (the
    /// devices are off the roster already), so the server has nothing to
    /// authorize; members see the removals inside MLS. When several members
    /// race, one commit wins and the others find nothing left to remove.
    async fn reconcile(&self, circle: &CircleId) -> Result<FollowUps> {
        let seen = self.authorized().await?.circle(circle).await?;
        let gone: Vec<DeviceId> = self
            .members(circle)
            .await?
            .into_iter()
            .filter(|d| !seen.roster.iter().any(|r| r.device_id == *d))
            .collect();
        if gone.is_empty() {
            return Ok(FollowUps::default());
        }
        self.remove(circle, gone, false).await
    }
}
