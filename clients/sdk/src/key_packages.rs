//! Keeping this device's KeyPackages on the server, so others can add it.

use crate::{Client, Result};
use hearth_protocol::key_packages::{KeyPackageCount, UploadKeyPackages};
use hearth_protocol::mls::{self as profile, KeyPackageOptions};

/// Keep at least this many KeyPackages on the server.
const LOW_WATER: u32 = 10;
/// Top the pool up to this many.
const TARGET: usize = 30;

impl Client {
    /// Tops the server's KeyPackage pool up when it runs low, and keeps a
    /// last-resort KeyPackage there.
    pub async fn top_up_key_packages(&self) -> Result<KeyPackageCount> {
        let count = self.authorized().await?.key_package_count().await?;
        self.top_up_from(count).await
    }

    /// Tops the pool up from its known `count` (a sync says it): nothing to
    /// send when it is above its mark.
    pub(crate) async fn top_up_from(&self, count: KeyPackageCount) -> Result<KeyPackageCount> {
        if !low(&count) {
            return Ok(count);
        }
        let want = TARGET.saturating_sub(count.available as usize);
        let need_last_resort = !count.last_resort;
        let (device, signer) = self.signer().await?;
        let upload = self
            .with(move |s| {
                let build = |last_resort| -> Result<_> {
                    let options = KeyPackageOptions {
                        lifetime: None,
                        last_resort,
                    };
                    let credential = profile::credential(&device, &signer);
                    Ok(profile::key_package(&s.provider, &signer, credential, options)?.into())
                };
                Ok(UploadKeyPackages {
                    key_packages: (0..want).map(|_| build(false)).collect::<Result<_>>()?,
                    last_resort: need_last_resort.then(|| build(true)).transpose()?,
                })
            })
            .await?;
        let api = self.authorized().await?;
        Ok(api.upload_key_packages(&upload).await?.pool)
    }
}

/// Whether the pool needs topping up.
pub(crate) fn low(count: &KeyPackageCount) -> bool {
    count.available < LOW_WATER || !count.last_resort
}
