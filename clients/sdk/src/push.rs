//! Push: where the server wakes this device while the app sleeps, whether
//! that still works, and what to do on waking.
//!
//! The platform hands the app a target (a Web Push subscription from a
//! browser or a UnifiedPush distributor, an APNs device token, an FCM
//! registration token); the app registers it here. A wake carries nothing:
//! the app calls [`Client::on_wake`], which fetches whatever is waiting.

use crate::{Client, Result};
use hearth_protocol::push::{PushServices, PushStatus, PushTarget};
use hearth_protocol::{CircleId, ErrorCode};

/// What a wake brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Woken {
    /// Circles this device joined (Welcomes accepted).
    pub joined: Vec<CircleId>,
    /// Circles with new messages, and how many.
    pub new_messages: Vec<(CircleId, usize)>,
}

impl Client {
    /// Which push transports the server offers, and the VAPID key a Web
    /// Push subscription must be made with.
    pub async fn push_services(&self) -> Result<PushServices> {
        self.authorized().await?.push_services().await
    }

    /// Registers where this device is woken (replacing any earlier target,
    /// reviving one the server had marked dead).
    pub async fn set_push_target(&self, target: &PushTarget) -> Result<PushStatus> {
        self.authorized().await?.put_push_target(target).await
    }

    /// This device's target and whether it still works. An app checks this
    /// on start: a target the push service called gone needs a fresh
    /// registration.
    pub async fn push_status(&self) -> Result<Option<PushStatus>> {
        match self.authorized().await?.push_status().await {
            Ok(status) => Ok(Some(status)),
            Err(err) if err.code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Stops push for this device.
    pub async fn remove_push_target(&self) -> Result<()> {
        match self.authorized().await?.delete_push_target().await {
            Err(err) if err.code() == Some(ErrorCode::NotFound) => Ok(()),
            other => other,
        }
    }

    /// What an app calls when a push wakes it: one sync across every circle
    /// (a wake never says which), accepting Welcomes ([`Client::sync_all`]).
    /// A circle this device was removed from meanwhile is a notice
    /// ([`crate::Event::Removed`]); the others are still caught up.
    pub async fn on_wake(&self) -> Result<Woken> {
        let synced = self.sync_all().await?;
        Ok(Woken {
            joined: synced.joined,
            new_messages: synced
                .messages
                .into_iter()
                .map(|(circle, messages)| (circle, messages.len()))
                .collect(),
        })
    }
}
