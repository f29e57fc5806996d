//! Repair: a device whose MLS state is lost, or no longer matches the
//! circle's (a commit it cannot process), rejoins by external commit from the
//! circle's latest GroupInfo. Messages from the gap are lost to it.

use crate::circles::drop_group;
use crate::{ATTEMPTS, Client, ClientError, Event, Result};
use hearth_protocol::CircleId;
use hearth_protocol::mls as profile;

impl Client {
    /// Rejoins a circle whose local state is lost or out of step: an external
    /// commit from the circle's latest GroupInfo, posted at the current epoch.
    /// Messages sent while out of step are not recoverable. Returns the new
    /// cursor (the external commit's sequence number).
    pub async fn rejoin(&self, circle: &CircleId) -> Result<u64> {
        let seq = self.rejoin_quietly(circle).await?;
        self.notify(Event::Rejoined {
            circle_id: circle.clone(),
        });
        Ok(seq)
    }

    /// [`Client::rejoin`] without the notice (for joining when a Welcome was
    /// unusable, which has its own).
    pub(crate) async fn rejoin_quietly(&self, circle: &CircleId) -> Result<u64> {
        for _ in 0..ATTEMPTS {
            let (device, signer) = self.signer().await?;
            let info = self.authorized().await?.group_info(circle).await?;
            let circle_id = circle.clone();
            let bundle = self
                .with(move |s| {
                    drop_group(s, &circle_id)?;
                    let credential = profile::credential(&device, &signer);
                    let (_, prepared) = profile::external_commit(
                        &s.provider,
                        &signer,
                        credential,
                        info.group_info.as_slice(),
                        info.epoch,
                    )?;
                    Ok(prepared.bundle()?)
                })
                .await?;
            if let Some(seq) = self.post_commit(circle, &bundle).await? {
                // Nothing before our external commit is ours to read.
                let circle_id = circle.clone();
                self.with(move |s| s.store.set_cursor(&circle_id, seq))
                    .await?;
                return Ok(seq);
            }
        }
        Err(ClientError::Contended)
    }
}
