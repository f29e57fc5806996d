//! Changing a circle: adding and removing devices, leaving, updating keys.
//!
//! Every change is a [`PreparedCommit`] built on the circle's current epoch
//! and posted as a commit bundle. When another commit got there first
//! (`stale_epoch`), the pending commit is dropped, the client catches up and
//! builds the change again on the new epoch, so the user's intent survives
//! the race; after [`ATTEMPTS`] it gives up with `Contended`.

use crate::store::Gone;
use crate::sync::{FollowUp, FollowUps};
use crate::{ATTEMPTS, Client, ClientError, Event, Result, State, load};
use hearth_protocol::circles::CommitBundle;
use hearth_protocol::key_packages::JoinRequestRef;
use hearth_protocol::mls::{self as profile, PreparedCommit};
use hearth_protocol::{CircleId, DeviceId, ErrorCode};
use openmls::prelude::{MlsGroup, OpenMlsProvider as _};
use openmls_basic_credential::SignatureKeyPair;
use std::sync::Arc;

/// Builds a commit on the group as it is now; `None` when, as the group is
/// now, there is nothing left to commit (another member's commit did it).
type Build = dyn Fn(&mut State, &mut MlsGroup, &SignatureKeyPair) -> Result<Option<PreparedCommit>>
    + Send
    + Sync;

impl Client {
    /// Adds devices to a circle (facilitators; any member for devices of its
    /// own account), optionally approving a join request.
    pub async fn add_devices(
        &self,
        circle: &CircleId,
        devices: &[DeviceId],
        join_request: Option<uuid::Uuid>,
    ) -> Result<()> {
        let (follow_ups, added) = self.add(circle, devices, join_request).await?;
        if added.is_empty() {
            return Err(ClientError::NoKeyPackages);
        }
        self.drive(follow_ups).await
    }

    /// Claims the devices' KeyPackages (with none named, those of the join
    /// request's devices) and commits the Add of those that had one: the
    /// follow-ups and the devices added (none, and no commit, when none had
    /// a KeyPackage).
    pub(crate) async fn add(
        &self,
        circle: &CircleId,
        devices: &[DeviceId],
        join_request: Option<uuid::Uuid>,
    ) -> Result<(FollowUps, Vec<DeviceId>)> {
        let circle_id = circle.clone();
        let suite = self
            .with(move |s| Ok(u16::from(load(s, &circle_id)?.ciphersuite())))
            .await?;
        let by_request = join_request
            .filter(|_| devices.is_empty())
            .map(|join_request_id| JoinRequestRef {
                circle_id: circle.clone(),
                join_request_id,
            });
        let claimed = self
            .authorized()
            .await?
            .claim_key_packages(devices, by_request, suite)
            .await?;
        let added: Vec<DeviceId> = claimed.key_packages.iter().map(|k| k.device_id).collect();
        if added.is_empty() {
            return Ok((FollowUps::default(), added));
        }
        let devices_added = added.clone();
        let key_packages: Vec<Vec<u8>> = claimed
            .key_packages
            .into_iter()
            .map(|k| k.key_package.into_inner())
            .collect();
        let mut follow_ups = self
            .commit(
                circle,
                Arc::new(move |s, group, signer| {
                    let parsed = key_packages
                        .iter()
                        .map(|bytes| profile::read_key_package(s.provider.crypto(), bytes))
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut prepared =
                        profile::add_commit(group, &s.provider, signer, &parsed, added.clone())?;
                    prepared.join_request_id = join_request;
                    Ok(Some(prepared))
                }),
            )
            .await?;
        // The newcomers cannot read what came before them: say who we are,
        // and (facilitators) leave them the calendar.
        follow_ups.push(FollowUp::ShareProfile(circle.clone()));
        follow_ups.push(FollowUp::WriteSnapshot(circle.clone()));
        Ok((follow_ups, devices_added))
    }

    /// Brings this account's other devices into every circle this device is
    /// in: claims their KeyPackages and commits the Add itself (a member may
    /// add devices of its own account). Returns the circles changed. `sync`
    /// does this for its circle by itself.
    pub async fn add_my_other_devices(&self) -> Result<Vec<CircleId>> {
        let mut changed = Vec::new();
        let mut follow_ups = FollowUps::default();
        for circle in self.circles().await? {
            let more = self.add_own_devices(&circle).await?;
            if !more.is_empty() {
                changed.push(circle);
            }
            follow_ups.extend(more);
        }
        self.drive(follow_ups).await?;
        Ok(changed)
    }

    /// Adds this account's devices that are not in the circle's MLS group yet
    /// (newly linked ones); says so with [`Event::DevicesAdded`]. Another of
    /// the account's devices adding them first is no failure.
    pub(crate) async fn add_own_devices(&self, circle: &CircleId) -> Result<FollowUps> {
        let (me, _) = self.signing_key().await?;
        let api = self.authorized().await?;
        let mine = api.devices().await?;
        if mine.devices.len() < 2 {
            return Ok(FollowUps::default());
        }
        // The MLS group is the membership: no second look at the roster.
        let in_group = self.members(circle).await?;
        let missing: Vec<DeviceId> = mine
            .devices
            .iter()
            .map(|d| d.device_id)
            .filter(|d| *d != me && !in_group.contains(d))
            .collect();
        if missing.is_empty() {
            return Ok(FollowUps::default());
        }
        match self.add(circle, &missing, None).await {
            // Nothing to add with yet (a new device that has not published
            // KeyPackages): a later sync adds it.
            Ok((_, added)) if added.is_empty() => Ok(FollowUps::default()),
            Ok((follow_ups, added)) => {
                self.notify(Event::DevicesAdded {
                    circle_id: circle.clone(),
                    devices: added,
                });
                Ok(follow_ups)
            }
            Err(err) if err.code() == Some(ErrorCode::DeviceOnRoster) => Ok(FollowUps::default()),
            Err(err) => Err(err),
        }
    }

    /// Removes members' devices (facilitators).
    pub async fn remove_devices(&self, circle: &CircleId, devices: &[DeviceId]) -> Result<()> {
        let follow_ups = self.remove(circle, devices.to_vec(), true).await?;
        self.drive(follow_ups).await
    }

    /// Removes the devices' MLS leaves; with `from_roster`, the commit takes
    /// them off the server's roster too (otherwise they are gone from it
    /// already). Devices whose leaves another member's commit removed
    /// meanwhile are left out; when none is left, nothing is committed.
    pub(crate) async fn remove(
        &self,
        circle: &CircleId,
        devices: Vec<DeviceId>,
        from_roster: bool,
    ) -> Result<FollowUps> {
        self.commit(
            circle,
            Arc::new(move |s, group, signer| {
                let members = profile::members(group);
                let still: Vec<DeviceId> = devices
                    .iter()
                    .filter(|d| members.contains(d))
                    .copied()
                    .collect();
                if still.is_empty() {
                    return Ok(None);
                }
                let mut prepared = profile::remove_commit(group, &s.provider, signer, &still)?;
                if from_roster {
                    prepared.removed = still;
                }
                Ok(Some(prepared))
            }),
        )
        .await
    }

    /// Leaves a circle: a self-update commit that takes this device off the
    /// roster, after which the server delivers nothing more of the circle. The
    /// facilitator's client removes the leftover leaf from the MLS group.
    pub async fn leave(&self, circle: &CircleId) -> Result<()> {
        let (me, _) = self.signing_key().await?;
        let mut follow_ups = self
            .commit(
                circle,
                Arc::new(move |s, group, signer| {
                    let mut prepared = profile::update_commit(group, &s.provider, signer)?;
                    prepared.removed = vec![me];
                    Ok(Some(prepared))
                }),
            )
            .await?;
        // Nothing more is owed to a circle we left.
        follow_ups.retain(|f| f.circle() != circle);
        self.gone(circle, Gone::Left).await?;
        self.drive(follow_ups).await
    }

    /// Rotates this device's key material in the circle (a self-update commit).
    pub async fn update(&self, circle: &CircleId) -> Result<()> {
        let follow_ups = self
            .commit(
                circle,
                Arc::new(|s, group, signer| {
                    Ok(Some(profile::update_commit(group, &s.provider, signer)?))
                }),
            )
            .await?;
        self.drive(follow_ups).await
    }

    /// Builds the commit with `build` on the epoch this device has and posts
    /// it; on `stale_epoch` drops it, catches up and goes round again (done
    /// when `build` finds nothing left to commit). A device without the
    /// circle's MLS state catches up (rejoins) first. Returns what catching
    /// up left to do.
    async fn commit(&self, circle: &CircleId, build: Arc<Build>) -> Result<FollowUps> {
        let mut follow_ups = FollowUps::default();
        for attempt in 0..ATTEMPTS {
            let circle_id = circle.clone();
            let (has_group, pending) = self
                .with(move |s| {
                    Ok(match load(s, &circle_id) {
                        Ok(group) => (true, group.pending_commit().is_some()),
                        Err(_) => (false, false),
                    })
                })
                .await?;
            if pending {
                follow_ups.extend(self.settle(circle).await?);
            } else if attempt > 0 || !has_group {
                follow_ups.extend(self.catch_up(circle).await?.follow_ups);
            }
            let (_, signer) = self.signer().await?;
            let (circle_id, build) = (circle.clone(), build.clone());
            let bundle = self
                .with(move |s| {
                    let mut group = load(s, &circle_id)?;
                    Ok(build(s, &mut group, &signer)?
                        .map(|prepared| prepared.bundle())
                        .transpose()?)
                })
                .await?;
            let Some(bundle) = bundle else {
                return Ok(follow_ups);
            };
            if let Some(seq) = self.post_commit(circle, &bundle).await? {
                // Entries others wrote before our commit are read now (what
                // follows — a snapshot for newcomers — may depend on them);
                // with none between, the cursor simply passes our commit.
                let circle_id = circle.clone();
                let cursor = self
                    .with(move |s| s.store.cursor(&circle_id))
                    .await?
                    .unwrap_or(0);
                if seq > cursor.saturating_add(1) {
                    follow_ups.extend(self.catch_up(circle).await?.follow_ups);
                } else {
                    let circle_id = circle.clone();
                    self.with(move |s| s.store.set_cursor(&circle_id, seq))
                        .await?;
                }
                return Ok(follow_ups);
            }
        }
        Err(ClientError::Contended)
    }

    /// Settles a commit whose answer was lost (before anything else is
    /// encrypted in the circle): catching up merges it if the
    /// log has it (ours, at the epoch it was made for); read to the end
    /// without it, the server never took it, and it is dropped.
    pub(crate) async fn settle_if_pending(&self, circle: &CircleId) -> Result<FollowUps> {
        let circle_id = circle.clone();
        let pending = self
            .with(move |s| Ok(load(s, &circle_id).is_ok_and(|g| g.pending_commit().is_some())))
            .await?;
        if pending {
            self.settle(circle).await
        } else {
            Ok(FollowUps::default())
        }
    }

    /// [`Client::settle_if_pending`], when a commit is pending.
    pub(crate) async fn settle(&self, circle: &CircleId) -> Result<FollowUps> {
        let follow_ups = self.catch_up(circle).await?.follow_ups;
        let circle_id = circle.clone();
        self.with(move |s| {
            let mut group = load(s, &circle_id)?;
            if group.pending_commit().is_some() {
                group
                    .clear_pending_commit(s.provider.storage())
                    .map_err(profile::failed("dropping our commit"))?;
            }
            Ok(())
        })
        .await?;
        Ok(follow_ups)
    }

    /// Posts a commit bundle. When the server accepts it, merges the pending
    /// commit: `Some(seq)`. When another commit got there first
    /// (`stale_epoch`), or the server refused it, drops the pending commit:
    /// `None` for the former. When no answer came (the connection dropped, a
    /// timeout), the server may have taken it: the pending commit is kept,
    /// and the log settles it — our commit at that epoch is merged when
    /// catching up reaches it, anything else drops it ([`Client::settle`]).
    pub(crate) async fn post_commit(
        &self,
        circle: &CircleId,
        bundle: &CommitBundle,
    ) -> Result<Option<u64>> {
        let posted = self.authorized().await?.post_commit(circle, bundle).await;
        if let Err(err) = &posted
            && err.code().is_none()
            && err.is_retryable()
        {
            return posted.map(|a| Some(a.seq));
        }
        let circle_id = circle.clone();
        let accepted = posted.as_ref().ok().map(|a| a.seq);
        self.with(move |s| {
            let mut group = load(s, &circle_id)?;
            match accepted {
                // The cursor stays: messages others sent in the old epoch
                // may precede our commit in the log, and are read (and our
                // commit passed over) on the next catch-up.
                Some(_) => {
                    group
                        .merge_pending_commit(&s.provider)
                        .map_err(profile::failed("merging our commit"))?;
                    s.calls
                        .rekey(circle_id.as_bytes(), &group, s.provider.crypto())
                }
                None => Ok(group
                    .clear_pending_commit(s.provider.storage())
                    .map_err(profile::failed("dropping our commit"))?),
            }
        })
        .await?;
        match posted {
            Ok(accepted) => Ok(Some(accepted.seq)),
            Err(err) if err.code() == Some(ErrorCode::StaleEpoch) => Ok(None),
            Err(err) => Err(err),
        }
    }
}
