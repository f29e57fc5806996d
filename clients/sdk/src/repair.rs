//! Repair: a device whose MLS state is lost, or no longer matches the
//! circle's (a commit it cannot process), rejoins by external commit from the
//! circle's latest GroupInfo. Messages from the gap are lost to it.

use crate::{ATTEMPTS, Client, ClientError, Result};
use hearth_protocol::CircleId;
use hearth_protocol::mls as profile;
use openmls::prelude::{GroupId, MlsGroup, OpenMlsProvider as _};

impl Client {
    /// Rejoins a circle whose local state is lost or out of step: an external
    /// commit from the circle's latest GroupInfo, posted at the current epoch.
    /// Messages sent while out of step are not recoverable. Returns the new
    /// cursor (the external commit's sequence number).
    pub async fn rejoin(&self, circle: &CircleId) -> Result<u64> {
        for _ in 0..ATTEMPTS {
            let (device, signer) = self.signer().await?;
            let info = self.authorized().await?.group_info(circle).await?;
            let circle_id = circle.clone();
            let bundle = self
                .with(move |s| {
                    let group_id = GroupId::from_slice(circle_id.as_bytes());
                    if let Ok(Some(mut old)) = MlsGroup::load(s.provider.storage(), &group_id) {
                        old.delete(s.provider.storage())
                            .map_err(profile::failed("deleting the broken group"))?;
                    }
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
                return Ok(seq);
            }
        }
        Err(ClientError::Contended)
    }
}
