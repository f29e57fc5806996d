//! Commit bundles: a commit with its Welcome, GroupInfo and roster change,
//! accepted only at the circle's current epoch. Of racing commits exactly
//! one wins; the others learn the epoch they lost to.

use super::{Caller, Delivery, DeliveryError, bounded, roster, signed, unsigned};
use crate::crypto;
use crate::framing::{self, CommitSender};
use crate::hub::Event;
use crate::storage::{AddedDevice, CommitOutcome, NewCommit, WakeFor};
use hearth_protocol::circles::{Accepted, CommitBundle};
use hearth_protocol::{Base64Bytes, CircleId};
use std::collections::HashMap;

impl Delivery {
    /// Checks a commit bundle (sizes, framing, the caller's place, the
    /// roster rules, the join request it approves), appends it, and tells
    /// the circle's sockets, the added devices, the video room and sleeping
    /// phones. An external commit (a rejoin) changes nobody else's place.
    pub async fn commit(
        &self,
        caller: Caller,
        circle: &CircleId,
        bundle: CommitBundle,
    ) -> Result<Accepted, DeliveryError> {
        let limit = self.limits.max_ciphertext_bytes;
        bounded(bundle.commit.as_slice(), limit, "commit")?;
        for part in [&bundle.welcome, &bundle.group_info].into_iter().flatten() {
            bounded(part.as_slice(), limit, "welcome or group_info")?;
        }
        let sender = framing::commit(bundle.commit.as_slice(), circle, bundle.epoch)?;
        if let Some(welcome) = &bundle.welcome {
            framing::welcome(welcome.as_slice())?;
        }
        if let Some(info) = &bundle.group_info {
            framing::group_info(info.as_slice(), circle, bundle.epoch.saturating_add(1))?;
        }
        if sender == CommitSender::External
            && (!bundle.added.is_empty()
                || bundle.removed.iter().any(|d| *d != caller.device)
                || bundle.join_request_id.is_some())
        {
            return Err(DeliveryError::Invalid(
                "an external commit rejoins the caller and changes nobody else's place on the \
                 roster"
                    .into(),
            ));
        }
        let record = self.membership(circle, caller.device).await?;
        if bundle.epoch != unsigned(record.epoch) {
            return Err(DeliveryError::StaleEpoch {
                current_epoch: unsigned(record.epoch),
            });
        }
        let mut devices = HashMap::new();
        for device in bundle.added.iter().chain(&bundle.removed) {
            if let Some(found) = self.storage.device(*device).await? {
                devices.insert(*device, found);
            }
        }
        let roles = roster::decide(&record, caller, &bundle, &devices)?;
        if let Some(request_id) = bundle.join_request_id {
            let request = self
                .storage
                .join_request(circle, request_id)
                .await?
                .ok_or(super::RosterRule::UnknownJoinRequest)?;
            if bundle.added.is_empty()
                || !bundle.added.iter().all(|d| request.device_ids.contains(d))
            {
                return Err(super::RosterRule::JoinRequestMismatch.into());
            }
        }
        let mut added = Vec::with_capacity(roles.len());
        for (device_id, role) in roles {
            added.push(AddedDevice {
                device_id,
                role,
                welcome_id: crypto::random_uuid()?,
            });
        }
        let commit = NewCommit {
            sender: caller.device,
            epoch: signed(bundle.epoch),
            commit: bundle.commit.into_inner(),
            welcome: bundle.welcome.map(Base64Bytes::into_inner),
            group_info: bundle.group_info.map(Base64Bytes::into_inner),
            added,
            removed: bundle.removed,
            join_request: bundle.join_request_id,
            now: crate::now(),
        };
        match self.storage.apply_commit(circle, &commit).await? {
            CommitOutcome::Accepted { seq, epoch } => {
                self.publish(Event::Circle(circle.clone())).await;
                self.evict(circle, &commit.removed);
                self.wake(WakeFor::Circle {
                    circle: circle.clone(),
                    except: Some(caller.device),
                });
                for added in &commit.added {
                    self.publish(Event::Device(added.device_id)).await;
                    self.wake(WakeFor::Device(added.device_id));
                }
                Ok(Accepted {
                    seq: unsigned(seq),
                    epoch: unsigned(epoch),
                })
            }
            CommitOutcome::Stale { current_epoch } => Err(DeliveryError::StaleEpoch {
                current_epoch: unsigned(current_epoch),
            }),
            CommitOutcome::NoCircle => Err(DeliveryError::NotFound),
        }
    }
}
