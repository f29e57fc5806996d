//! KeyPackages: each device's pool, its last resort, and atomic claims.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::{AccountId, DeviceId};

/// A validated KeyPackage about to be stored.
#[derive(Debug, Clone)]
pub struct NewKeyPackage {
    /// Its MLS hash reference (unique).
    pub hash_ref: Vec<u8>,
    /// The TLS-serialised KeyPackage.
    pub data: Vec<u8>,
    /// Unix seconds when its lifetime ends.
    pub expires_at: i64,
    /// Its ciphersuite (RFC 9420's code).
    pub cipher_suite: u16,
}

/// What happened to one KeyPackage of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPackageStored {
    /// Stored.
    Stored,
    /// The same KeyPackage is stored already.
    Duplicate,
    /// The pool is at its limit.
    PoolFull,
}

/// Devices' KeyPackages.
#[async_trait]
pub trait KeyPackageStore {
    /// Stores KeyPackages for a device while its pool (unexpired, not last
    /// resort) holds fewer than `max_pool`.
    async fn store_key_packages(
        &self,
        device_id: DeviceId,
        items: &[NewKeyPackage],
        max_pool: u32,
        now: i64,
    ) -> Result<Vec<KeyPackageStored>>;

    /// Replaces the device's last-resort KeyPackage.
    async fn store_last_resort(
        &self,
        device_id: DeviceId,
        item: &NewKeyPackage,
        now: i64,
    ) -> Result<KeyPackageStored>;

    /// Takes one unexpired KeyPackage of the device in `cipher_suite`, or,
    /// when none is left, reads (without consuming) its last resort in that
    /// suite. `(bytes, is_last_resort)`.
    async fn claim_key_package(
        &self,
        device_id: DeviceId,
        cipher_suite: u16,
        now: i64,
    ) -> Result<Option<(Vec<u8>, bool)>>;

    /// Whether `claimer` (of `account`) may claim `target`'s KeyPackages:
    /// `target` belongs to the same account, or is named in a pending join
    /// request of a circle `claimer` facilitates.
    async fn may_claim(
        &self,
        claimer: DeviceId,
        account: AccountId,
        target: DeviceId,
    ) -> Result<bool>;

    /// The device's unexpired pool size and whether it has a last resort.
    async fn key_package_count(&self, device_id: DeviceId, now: i64) -> Result<(u32, bool)>;
}

/// This area's half of the `Storage` implementation both databases share,
/// expanded by `impl_storage!` inside each backend's module.
macro_rules! key_packages_sql {
    () => {
        #[async_trait]
        impl KeyPackageStore for This {
            async fn store_key_packages(
                &self,
                device_id: DeviceId,
                items: &[NewKeyPackage],
                max_pool: u32,
                now: i64,
            ) -> Result<Vec<KeyPackageStored>> {
                let mut tx = self.write().await?;
                let mut pool: i64 = sqlx::query_scalar(sql::COUNT_KEY_PACKAGES)
                    .bind(device_id.to_string())
                    .bind(0_i64)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                let mut outcomes = Vec::with_capacity(items.len());
                for item in items {
                    if pool >= i64::from(max_pool) {
                        outcomes.push(KeyPackageStored::PoolFull);
                        continue;
                    }
                    let done = sqlx::query(sql::INSERT_KEY_PACKAGE)
                        .bind(device_id.to_string())
                        .bind(item.hash_ref.as_slice())
                        .bind(item.data.as_slice())
                        .bind(0_i64)
                        .bind(item.expires_at)
                        .bind(now)
                        .bind(i64::from(item.cipher_suite))
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 1 {
                        pool += 1;
                        outcomes.push(KeyPackageStored::Stored);
                    } else {
                        outcomes.push(KeyPackageStored::Duplicate);
                    }
                }
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn store_last_resort(
                &self,
                device_id: DeviceId,
                item: &NewKeyPackage,
                now: i64,
            ) -> Result<KeyPackageStored> {
                let mut tx = self.write().await?;
                sqlx::query(sql::DELETE_LAST_RESORT)
                    .bind(device_id.to_string())
                    .bind(i64::from(item.cipher_suite))
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(sql::INSERT_KEY_PACKAGE)
                    .bind(device_id.to_string())
                    .bind(item.hash_ref.as_slice())
                    .bind(item.data.as_slice())
                    .bind(1_i64)
                    .bind(item.expires_at)
                    .bind(now)
                    .bind(i64::from(item.cipher_suite))
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 1 {
                    tx.commit().await?;
                    Ok(KeyPackageStored::Stored)
                } else {
                    tx.rollback().await?;
                    Ok(KeyPackageStored::Duplicate)
                }
            }

            async fn claim_key_package(
                &self,
                device_id: DeviceId,
                cipher_suite: u16,
                now: i64,
            ) -> Result<Option<(Vec<u8>, bool)>> {
                let claimed: Option<Vec<u8>> =
                    sqlx::query_scalar(<Self as SqlBackend>::CLAIM_KEY_PACKAGE)
                        .bind(device_id.to_string())
                        .bind(now)
                        .bind(i64::from(cipher_suite))
                        .fetch_optional(self.writer())
                        .await?;
                if let Some(data) = claimed {
                    return Ok(Some((data, false)));
                }
                let last: Option<Vec<u8>> = sqlx::query_scalar(sql::SELECT_LAST_RESORT)
                    .bind(device_id.to_string())
                    .bind(now)
                    .bind(i64::from(cipher_suite))
                    .fetch_optional(self.reader())
                    .await?;
                Ok(last.map(|data| (data, true)))
            }

            async fn may_claim(
                &self,
                claimer: DeviceId,
                account: AccountId,
                target: DeviceId,
            ) -> Result<bool> {
                Ok(sqlx::query_scalar(sql::MAY_CLAIM)
                    .bind(claimer.to_string())
                    .bind(target.to_string())
                    .bind(account.to_string())
                    .fetch_one(self.reader())
                    .await?)
            }

            async fn key_package_count(
                &self,
                device_id: DeviceId,
                now: i64,
            ) -> Result<(u32, bool)> {
                let count = async |last_resort: i64| -> Result<i64> {
                    Ok(sqlx::query_scalar(sql::COUNT_KEY_PACKAGES)
                        .bind(device_id.to_string())
                        .bind(last_resort)
                        .bind(now)
                        .fetch_one(self.reader())
                        .await?)
                };
                let available = count(0).await?;
                let last_resort = count(1).await?;
                Ok((
                    u32::try_from(available).unwrap_or(u32::MAX),
                    last_resort > 0,
                ))
            }
        }
    };
}

pub(crate) use key_packages_sql;
