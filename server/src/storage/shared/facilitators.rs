//! Facilitator enrolment, quotas and figures. The half of `facilitators.rs`
//! that runs SQL, compiled once for each database (see `shared/mod.rs`).

use super::*;

const INSERT_CODE: &str =
    "INSERT INTO facilitator_codes (code_hash, expires_at, created_at) VALUES ($1, $2, $3)";

const TAKE_CODE: &str = "DELETE FROM facilitator_codes WHERE code_hash = $1 AND expires_at > $2";

const ENROL: &str = "INSERT INTO facilitators (account_id, enrolled_at) VALUES ($1, $2) \
     ON CONFLICT (account_id) DO NOTHING";

const ENROLLED_AT: &str = "SELECT enrolled_at FROM facilitators WHERE account_id = $1";

const FACILITATORS: &str =
    "SELECT account_id, enrolled_at FROM facilitators ORDER BY enrolled_at, account_id";

const REVOKE: &str = "DELETE FROM facilitators WHERE account_id = $1";

/// One statement: the three counts of an account.
const USAGE: &str = "SELECT \
     (SELECT COUNT(DISTINCT r.circle_id) FROM roster r JOIN devices d ON d.id = r.device_id \
      WHERE d.account_id = $1 AND r.role = 'facilitator'), \
     (SELECT COUNT(*) FROM devices WHERE account_id = $1 AND revoked_at IS NULL), \
     (SELECT COUNT(*) FROM invites i WHERE i.expires_at > $2 AND i.uses < i.max_uses \
      AND i.circle_id IN (SELECT r.circle_id FROM roster r JOIN devices d ON d.id = r.device_id \
      WHERE d.account_id = $1 AND r.role = 'facilitator'))";

const FIGURES: &str = "SELECT \
     (SELECT COUNT(*) FROM accounts), \
     (SELECT COUNT(*) FROM devices), \
     (SELECT COUNT(*) FROM facilitators), \
     (SELECT COUNT(*) FROM circles), \
     (SELECT COUNT(*) FROM log_entries), \
     (SELECT COALESCE(SUM(LENGTH(ciphertext)), 0) FROM log_entries) \
     + (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM welcomes) \
     + (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM snapshots)";

#[async_trait]
impl FacilitatorStore for This {
    async fn insert_facilitator_code(
        &self,
        hash: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(INSERT_CODE)
            .bind(&hash[..])
            .bind(expires_at)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn redeem_facilitator_code(
        &self,
        hash: &[u8; 32],
        account: AccountId,
        now: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.write().await?;
        let taken = sqlx::query(TAKE_CODE)
            .bind(&hash[..])
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        sqlx::query(ENROL)
            .bind(account.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let since: i64 = sqlx::query_scalar(ENROLLED_AT)
            .bind(account.to_string())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(since))
    }

    async fn facilitator_since(&self, account: AccountId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(ENROLLED_AT)
            .bind(account.to_string())
            .fetch_optional(self.reader())
            .await?)
    }

    async fn facilitators(&self) -> Result<Vec<(AccountId, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(FACILITATORS)
            .fetch_all(self.reader())
            .await?;
        rows.into_iter()
            .map(|(id, at)| Ok((parse_account_id(&id)?, at)))
            .collect()
    }

    async fn revoke_facilitator(&self, account: AccountId) -> Result<bool> {
        let done = sqlx::query(REVOKE)
            .bind(account.to_string())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn usage(&self, account: AccountId, now: i64) -> Result<Usage> {
        let (circles, devices, invites): (i64, i64, i64) = sqlx::query_as(USAGE)
            .bind(account.to_string())
            .bind(now)
            .fetch_one(self.reader())
            .await?;
        Ok(Usage {
            circles,
            devices,
            invites,
        })
    }

    async fn figures(&self) -> Result<Figures> {
        let (accounts, devices, facilitators, circles, messages, bytes): (
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(FIGURES).fetch_one(self.reader()).await?;
        Ok(Figures {
            accounts,
            devices,
            facilitators,
            circles,
            messages,
            bytes,
        })
    }
}
