//! Operations: health, sweeping, cross-node notices. The half of `operations.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const PURGE_CHALLENGES: &str = "DELETE FROM challenges WHERE expires_at < $1";

const PURGE_LINK_TOKENS: &str = "DELETE FROM link_tokens WHERE expires_at < $1";

const PURGE_FACILITATOR_CODES: &str = "DELETE FROM facilitator_codes WHERE expires_at < $1";

const PURGE_REFRESH_TOKENS: &str = "DELETE FROM refresh_tokens WHERE expires_at < $1";

const PURGE_LOGINS: &str = "DELETE FROM logins WHERE expires_at < $1";

const PURGE_KEY_PACKAGES: &str = "DELETE FROM key_packages WHERE expires_at <= $1";

const PURGE_LOG: &str = "DELETE FROM log_entries WHERE created_at < $1 - \
     (SELECT retention_secs FROM circles WHERE circles.id = log_entries.circle_id)";

const PURGE_WELCOMES: &str = "DELETE FROM welcomes WHERE created_at < $1 - \
     (SELECT retention_secs FROM circles WHERE circles.id = welcomes.circle_id)";

const PURGE_INVITES: &str = "DELETE FROM invites WHERE expires_at <= $1 OR uses >= max_uses";

/// Circles whose roster is empty: nobody can read or write them again. Their
/// log, Welcomes, invites, join requests and snapshot go with them (foreign
/// keys cascade). Created before `$1`, which every circle is.
const PURGE_ABANDONED_CIRCLES: &str = "DELETE FROM circles WHERE created_at <= $1 \
     AND NOT EXISTS (SELECT 1 FROM roster r WHERE r.circle_id = circles.id)";

const INSTANCE: &str = "SELECT generation, from_backup, restores FROM instance WHERE one = 1";

const NEW_GENERATION: &str =
    "UPDATE instance SET generation = $1, from_backup = 0, restores = restores + 1 WHERE one = 1";

const JUMP_NUMBERS: &str = "UPDATE circles SET last_seq = last_seq + $1";

const MARK_AS_BACKUP: &str = "UPDATE instance SET from_backup = 1 WHERE one = 1";

#[async_trait]
impl Operations for This {
    fn backend(&self) -> Backend {
        <Self as SqlBackend>::BACKEND
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    async fn close(&self) {
        self.close_pools().await;
    }

    async fn instance(&self) -> Result<Instance> {
        let (generation, from_backup, restores): (String, i64, i64) =
            sqlx::query_as(INSTANCE).fetch_one(self.reader()).await?;
        Ok(Instance {
            generation,
            from_backup: from_backup != 0,
            restores,
        })
    }

    async fn begin_generation(&self, generation: &str, jump: i64) -> Result<Instance> {
        let mut tx = self.write().await?;
        sqlx::query(NEW_GENERATION)
            .bind(generation)
            .execute(&mut *tx)
            .await?;
        sqlx::query(JUMP_NUMBERS)
            .bind(jump)
            .execute(&mut *tx)
            .await?;
        let (generation, from_backup, restores): (String, i64, i64) =
            sqlx::query_as(INSTANCE).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(Instance {
            generation,
            from_backup: from_backup != 0,
            restores,
        })
    }

    async fn mark_as_backup(&self) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(MARK_AS_BACKUP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<Purged> {
        let mut tx = self.write().await?;
        let mut purge = async |statement: &'static str| -> Result<u64> {
            let done = sqlx::query(statement).bind(now).execute(&mut *tx).await?;
            Ok(done.rows_affected())
        };
        let purged = Purged {
            challenges: purge(PURGE_CHALLENGES).await?,
            link_tokens: purge(PURGE_LINK_TOKENS).await? + purge(PURGE_FACILITATOR_CODES).await?,
            logins: purge(PURGE_REFRESH_TOKENS).await? + purge(PURGE_LOGINS).await?,
            key_packages: purge(PURGE_KEY_PACKAGES).await?,
            log_entries: purge(PURGE_LOG).await? + purge(PURGE_WELCOMES).await?,
            invites: purge(PURGE_INVITES).await?,
            circles: purge(PURGE_ABANDONED_CIRCLES).await?,
        };
        tx.commit().await?;
        Ok(purged)
    }

    async fn notify(&self, event: &str) -> Result<()> {
        self.notify_nodes(event).await
    }

    async fn listen(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()> {
        self.listen_nodes(deliver).await
    }
}
