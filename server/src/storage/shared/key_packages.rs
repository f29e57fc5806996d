//! KeyPackages: publishing, counting and claiming. The half of `key_packages.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const INSERT_KEY_PACKAGE: &str = "INSERT INTO key_packages \
     (device_id, hash_ref, data, last_resort, expires_at, created_at, cipher_suite) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (hash_ref) DO NOTHING";

const COUNT_KEY_PACKAGES: &str = "SELECT COUNT(*) FROM key_packages \
     WHERE device_id = $1 AND last_resort = $2 AND expires_at > $3";

const DELETE_LAST_RESORT: &str =
    "DELETE FROM key_packages WHERE device_id = $1 AND cipher_suite = $2 AND last_resort = 1";

const SELECT_LAST_RESORT: &str = "SELECT data FROM key_packages \
     WHERE device_id = $1 AND cipher_suite = $3 AND last_resort = 1 AND expires_at > $2";

/// Whether device $1 may claim device $2's KeyPackages: $2 belongs to $1's
/// account ($3), or a pending join request of a circle $1 facilitates names $2.
const MAY_CLAIM: &str = "SELECT EXISTS (SELECT 1 FROM devices WHERE id = $2 AND account_id = $3) \
     OR EXISTS (SELECT 1 FROM join_requests j JOIN roster r ON r.circle_id = j.circle_id \
     WHERE r.device_id = $1 AND r.role = 'facilitator' \
     AND (' ' || j.device_ids || ' ') LIKE ('% ' || $2 || ' %'))";

/// Stores one KeyPackage in the write transaction `tx`; false if it was
/// there already (the same hash reference).
async fn insert(
    tx: &mut Transaction<'static, Db>,
    device_id: DeviceId,
    item: &NewKeyPackage,
    last_resort: bool,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(INSERT_KEY_PACKAGE)
        .bind(device_id.to_string())
        .bind(item.hash_ref.as_slice())
        .bind(item.data.as_slice())
        .bind(i64::from(last_resort))
        .bind(item.expires_at)
        .bind(now)
        .bind(i64::from(item.cipher_suite))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

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
        let mut pool: i64 = sqlx::query_scalar(COUNT_KEY_PACKAGES)
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
            if insert(&mut tx, device_id, item, false, now).await? {
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
        sqlx::query(DELETE_LAST_RESORT)
            .bind(device_id.to_string())
            .bind(i64::from(item.cipher_suite))
            .execute(&mut *tx)
            .await?;
        if insert(&mut tx, device_id, item, true, now).await? {
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
        let claimed: Option<Vec<u8>> = sqlx::query_scalar(<Self as SqlBackend>::CLAIM_KEY_PACKAGE)
            .bind(device_id.to_string())
            .bind(now)
            .bind(i64::from(cipher_suite))
            .fetch_optional(self.writer())
            .await?;
        if let Some(data) = claimed {
            return Ok(Some((data, false)));
        }
        let last: Option<Vec<u8>> = sqlx::query_scalar(SELECT_LAST_RESORT)
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
        Ok(sqlx::query_scalar(MAY_CLAIM)
            .bind(claimer.to_string())
            .bind(target.to_string())
            .bind(account.to_string())
            .fetch_one(self.reader())
            .await?)
    }

    async fn key_package_count(&self, device_id: DeviceId, now: i64) -> Result<(u32, bool)> {
        let count = async |last_resort: i64| -> Result<i64> {
            Ok(sqlx::query_scalar(COUNT_KEY_PACKAGES)
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
