//! Circles as this device knows them: creating one, joining from Welcomes,
//! and what the local MLS group says (members, epoch, authenticator).

use crate::store::Gone;
use crate::sync::{FollowUp, FollowUps};
use crate::{Client, ClientError, Event, Result, State, load, random};
use hearth_protocol::CircleId;
use hearth_protocol::circles::{CreateCircle, PendingWelcome, RosterEntry};
use hearth_protocol::mls::{self as profile, MlsError};
use openmls::prelude::{GroupId, MlsGroup, OpenMlsProvider as _};

/// Deletes the circle's MLS group, if there is one.
pub(crate) fn drop_group(s: &State<'_>, circle: &CircleId) -> Result<()> {
    let group_id = GroupId::from_slice(circle.as_bytes());
    if let Ok(Some(mut old)) = MlsGroup::load(s.provider.storage(), &group_id) {
        old.delete(s.provider.storage())
            .map_err(profile::failed("deleting the circle's old group"))?;
    }
    Ok(())
}

/// A circle's policy at creation; `None` takes the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CirclePolicy {
    /// Members besides facilitators (server default 12).
    pub max_members: Option<u32>,
    /// Seconds the server keeps undelivered entries (server default 30 days).
    pub retention_secs: Option<u64>,
}

impl Client {
    /// Creates a circle: a new MLS group, registered with the server, with
    /// this device as facilitator.
    pub async fn create_circle(&self) -> Result<CircleId> {
        self.create_circle_with(CirclePolicy::default()).await
    }

    /// Creates a circle with its own policy (member limit, retention).
    pub async fn create_circle_with(&self, policy: CirclePolicy) -> Result<CircleId> {
        let id = CircleId::from_bytes(random::<16>()?.to_vec())
            .map_err(|_| ClientError::Unexpected("circle id"))?;
        let (device, signer) = self.signer().await?;
        let group_id = id.clone();
        let group_info = self
            .with(move |s| {
                let group = MlsGroup::new_with_group_id(
                    &s.provider,
                    &signer,
                    &profile::create_config(),
                    GroupId::from_slice(group_id.as_bytes()),
                    profile::credential(&device, &signer),
                )
                .map_err(profile::failed("creating the group"))?;
                let info = group
                    .export_group_info(s.provider.crypto(), &signer, true)
                    .map_err(profile::failed("exporting the GroupInfo"))?;
                s.store.set_cursor(&group_id, 0)?;
                // Its creator facilitates it (the server makes it so).
                s.store.add_facilitators(&group_id, &[device])?;
                Ok(profile::wire(&info)?)
            })
            .await?;
        let created = self
            .authorized()
            .await?
            .create_circle(&CreateCircle {
                circle_id: id.clone(),
                max_members: policy.max_members,
                retention_secs: policy.retention_secs,
                group_info: Some(group_info),
            })
            .await;
        match created {
            Ok(_) => Ok(id),
            // Refused (not enrolled, a quota): the circle never was, and
            // its local group goes. (Not when the answer was lost: the
            // server may have it.)
            Err(err @ ClientError::Api { status, .. }) if status < 500 => {
                self.with(move |s| {
                    drop_group(s, &id)?;
                    s.store.forget_circle(&id)
                })
                .await?;
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Joins every circle this device has a Welcome for. A circle it left
    /// or was removed from before is joined afresh (its old MLS state is
    /// dropped; its history stays). A Welcome that cannot be used (no ratchet
    /// tree, or for a KeyPackage this device no longer holds) does not stop
    /// the others: the server has this device on the roster, so it joins by
    /// external commit instead, and says so ([`Event::WelcomeUnusable`]).
    ///
    /// One sync request that names no circle: it brings the Welcomes with
    /// the logs of their circles, which are read at once. The Welcomes are
    /// deleted on the server by the next sync (used or not: an unusable one
    /// must not come back).
    pub async fn accept_welcomes(&self) -> Result<Vec<CircleId>> {
        let synced = self.sync_welcomes().await?;
        Ok(synced.joined)
    }

    /// Joins the circles of these Welcomes (see [`Client::accept_welcomes`]);
    /// deleting them on the server is the caller's. A Welcome this device
    /// used already (it was killed before the server heard so) is passed
    /// over: its group is there, at the Welcome's epoch or later.
    pub(crate) async fn join_welcomes(
        &self,
        pending: Vec<PendingWelcome>,
    ) -> Result<(Vec<CircleId>, FollowUps)> {
        let mut joined = Vec::new();
        let mut follow_ups = FollowUps::default();
        for pending in pending {
            let welcome = pending.welcome.into_inner();
            let (circle, seq, epoch) = (pending.circle_id.clone(), pending.seq, pending.epoch);
            let used = self
                .with(move |s| {
                    let current = s.store.gone(&circle)?.is_none()
                        && load(s, &circle).is_ok_and(|g| g.epoch().as_u64() >= epoch);
                    if current {
                        return Ok(None);
                    }
                    drop_group(s, &circle)?;
                    s.store.join_circle(&circle, seq)?;
                    match profile::join(&s.provider, &welcome) {
                        Ok(_) => Ok(Some(true)),
                        Err(MlsError::Operation { .. } | MlsError::Decode { .. }) => {
                            Ok(Some(false))
                        }
                        Err(err) => Err(err.into()),
                    }
                })
                .await?;
            let circle = pending.circle_id;
            let Some(used) = used else {
                continue;
            };
            if !used {
                let repaired = self.rejoin_quietly(&circle).await.is_ok();
                if !repaired {
                    self.with({
                        let circle = circle.clone();
                        move |s| s.store.mark_gone(&circle, Gone::Removed)
                    })
                    .await?;
                }
                self.notify(Event::WelcomeUnusable {
                    circle_id: circle.clone(),
                    repaired,
                });
                if !repaired {
                    continue;
                }
            }
            follow_ups.push(FollowUp::ShareProfile(circle.clone()));
            joined.push(circle);
        }
        Ok((joined, follow_ups))
    }

    /// The circles this device is in.
    pub async fn circles(&self) -> Result<Vec<CircleId>> {
        self.with(|s| Ok(s.store.circles()?.into_iter().map(|(c, _)| c).collect()))
            .await
    }

    /// The circles this device was in and no longer is: `true` for those a
    /// facilitator removed it from, `false` for those it left. Their history
    /// stays readable.
    pub async fn past_circles(&self) -> Result<Vec<(CircleId, bool)>> {
        self.with(|s| {
            Ok(s.store
                .past_circles()?
                .into_iter()
                .map(|(c, how)| (c, how == Gone::Removed))
                .collect())
        })
        .await
    }

    /// Notes that this device is no longer in the circle: its MLS state goes
    /// (so that it can be welcomed back), its history stays. A removal is a
    /// notice ([`Event::Removed`]).
    pub(crate) async fn gone(&self, circle: &CircleId, how: Gone) -> Result<()> {
        let circle_id = circle.clone();
        let was_in = self
            .with(move |s| {
                let was_in = s.store.gone(&circle_id)?.is_none();
                drop_group(s, &circle_id)?;
                s.store.mark_gone(&circle_id, how)?;
                Ok(was_in)
            })
            .await?;
        if was_in && how == Gone::Removed {
            self.notify(Event::Removed {
                circle_id: circle.clone(),
            });
        }
        Ok(())
    }

    /// The circle's roster as the server keeps it: each device with its role
    /// (compare with [`Client::members`], the MLS group's own membership).
    pub async fn roster(&self, circle: &CircleId) -> Result<Vec<RosterEntry>> {
        Ok(self.authorized().await?.circle(circle).await?.roster)
    }

    /// The devices in the circle's MLS group: the real membership, which
    /// members check rather than trusting the server's roster.
    pub async fn members(&self, circle: &CircleId) -> Result<Vec<hearth_protocol::DeviceId>> {
        let circle = circle.clone();
        self.with(move |s| Ok(profile::members(&load(s, &circle)?)))
            .await
    }

    /// The circle's current epoch.
    pub async fn epoch(&self, circle: &CircleId) -> Result<u64> {
        let circle = circle.clone();
        self.with(move |s| Ok(load(s, &circle)?.epoch().as_u64()))
            .await
    }

    /// The epoch authenticator: members who compare it out of band detect a
    /// split view of the circle.
    pub async fn epoch_authenticator(&self, circle: &CircleId) -> Result<Vec<u8>> {
        let circle = circle.clone();
        self.with(move |s| Ok(load(s, &circle)?.epoch_authenticator().as_slice().to_vec()))
            .await
    }
}
