//! Identity: accounts, devices, challenges, logins and refresh tokens, signing keys. The half of `identity.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const SELECT_SIGNING_KEYS: &str =
    "SELECT kid, private_key, created_at FROM signing_keys ORDER BY created_at, kid";

const INSERT_SIGNING_KEY: &str = "INSERT INTO signing_keys (kid, private_key, created_at) \
     VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING";

const REWRAP_SIGNING_KEY: &str = "UPDATE signing_keys SET private_key = $2 WHERE kid = $1";

const INSERT_CHALLENGE: &str =
    "INSERT INTO challenges (challenge_hash, expires_at) VALUES ($1, $2)";

const TAKE_CHALLENGE: &str =
    "DELETE FROM challenges WHERE challenge_hash = $1 RETURNING expires_at";

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, created_at) VALUES ($1, $2)";

const INSERT_DEVICE: &str = "INSERT INTO devices (id, account_id, public_key, created_at) \
     VALUES ($1, $2, $3, $4)";

const TAKE_LINK_TOKEN: &str =
    "DELETE FROM link_tokens WHERE token_hash = $1 RETURNING account_id, expires_at";

const INSERT_LINK_TOKEN: &str =
    "INSERT INTO link_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)";

const SELECT_DEVICE: &str =
    "SELECT id, account_id, public_key, created_at, revoked_at FROM devices WHERE id = $1";

const SELECT_ACCOUNT_DEVICES: &str = "SELECT id, account_id, public_key, created_at, revoked_at FROM devices \
     WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id";

const REVOKE_DEVICE: &str = "UPDATE devices SET revoked_at = $3 \
     WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL";

const DELETE_DEVICE_LOGINS: &str = "DELETE FROM logins WHERE device_id = $1";

const DELETE_DEVICE_ROSTER: &str = "DELETE FROM roster WHERE device_id = $1";

const DELETE_DEVICE_WELCOMES: &str = "DELETE FROM welcomes WHERE device_id = $1";

const DELETE_DEVICE_KEY_PACKAGES: &str = "DELETE FROM key_packages WHERE device_id = $1";

const DELETE_ACCOUNT: &str = "DELETE FROM accounts WHERE id = $1";

const INSERT_LOGIN: &str =
    "INSERT INTO logins (id, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";

const INSERT_REFRESH_TOKEN: &str =
    "INSERT INTO refresh_tokens (token_hash, login_id, expires_at) VALUES ($1, $2, $3)";

const SELECT_REFRESH_TOKEN: &str = "SELECT r.login_id, r.expires_at, r.used_at, \
     s.device_id, d.revoked_at FROM refresh_tokens r \
     JOIN logins s ON s.id = r.login_id JOIN devices d ON d.id = s.device_id \
     WHERE r.token_hash = $1";

const SPEND_REFRESH_TOKEN: &str =
    "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL";

const EXTEND_LOGIN: &str = "UPDATE logins SET expires_at = $2 WHERE id = $1 AND expires_at < $2";

const DELETE_LOGIN: &str = "DELETE FROM logins WHERE id = $1";

const SELECT_LIVE_LOGIN: &str = "SELECT d.account_id FROM logins s \
     JOIN devices d ON d.id = s.device_id \
     WHERE s.id = $1 AND s.device_id = $2 AND d.revoked_at IS NULL";

/// A device as stored.
#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: String,
    account_id: String,
    public_key: Vec<u8>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl DeviceRow {
    fn record(self) -> Result<DeviceRecord> {
        Ok(DeviceRecord {
            id: parse_device_id(&self.id)?,
            account_id: parse_account_id(&self.account_id)?,
            public_key: self.public_key,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// A refresh token with its login and device, as the rotation reads it.
#[derive(sqlx::FromRow)]
struct RefreshRow {
    login_id: String,
    expires_at: i64,
    used_at: Option<i64>,
    device_id: String,
    revoked_at: Option<i64>,
}

async fn insert_device(
    tx: &mut Transaction<'static, Db>,
    account_id: AccountId,
    device: &NewDevice,
) -> Result<()> {
    sqlx::query(INSERT_DEVICE)
        .bind(device.id.to_string())
        .bind(account_id.to_string())
        .bind(device.public_key.as_slice())
        .bind(device.created_at)
        .execute(&mut **tx)
        .await
        .map_err(|err| unique_violation(err, StorageError::DeviceExists))?;
    Ok(())
}

#[async_trait]
impl IdentityStore for This {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let rows: Vec<(String, Vec<u8>, i64)> = sqlx::query_as(SELECT_SIGNING_KEYS)
            .fetch_all(self.reader())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(kid, private_key, created_at)| SigningKeyRecord {
                kid,
                private_key: secrecy::SecretBox::new(Box::new(private_key)),
                created_at,
            })
            .collect())
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
        sqlx::query(INSERT_SIGNING_KEY)
            .bind(&key.kid)
            .bind(key.private_key.expose_secret().as_slice())
            .bind(key.created_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn rewrap_signing_key(&self, kid: &str, private_key: &[u8]) -> Result<bool> {
        let done = sqlx::query(REWRAP_SIGNING_KEY)
            .bind(kid)
            .bind(private_key)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_challenge(&self, hash: &[u8; 32], expires_at: i64) -> Result<()> {
        sqlx::query(INSERT_CHALLENGE)
            .bind(hash.as_slice())
            .bind(expires_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<bool> {
        let expires_at: Option<i64> = sqlx::query_scalar(TAKE_CHALLENGE)
            .bind(hash.as_slice())
            .fetch_optional(self.writer())
            .await?;
        Ok(expires_at.is_some_and(|at| at >= now))
    }

    async fn create_account(&self, account_id: AccountId, device: &NewDevice) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(INSERT_ACCOUNT)
            .bind(account_id.to_string())
            .bind(device.created_at)
            .execute(&mut *tx)
            .await?;
        insert_device(&mut tx, account_id, device).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn link_device(
        &self,
        link_token_hash: &[u8; 32],
        now: i64,
        device: &NewDevice,
    ) -> Result<AccountId> {
        let mut tx = self.write().await?;
        let row: Option<(String, i64)> = sqlx::query_as(TAKE_LINK_TOKEN)
            .bind(link_token_hash.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
        let Some((account_id, expires_at)) = row else {
            return Err(StorageError::LinkTokenInvalid);
        };
        if expires_at < now {
            // Spend the expired token anyway: it is of no further use.
            tx.commit().await?;
            return Err(StorageError::LinkTokenInvalid);
        }
        let account_id = parse_account_id(&account_id)?;
        insert_device(&mut tx, account_id, device).await?;
        tx.commit().await?;
        Ok(account_id)
    }

    async fn insert_link_token(
        &self,
        hash: &[u8; 32],
        account_id: AccountId,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(INSERT_LINK_TOKEN)
            .bind(hash.as_slice())
            .bind(account_id.to_string())
            .bind(expires_at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>> {
        let row = sqlx::query_as::<_, DeviceRow>(SELECT_DEVICE)
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?;
        row.map(DeviceRow::record).transpose()
    }

    async fn account_devices(&self, account_id: AccountId) -> Result<Vec<DeviceRecord>> {
        let rows = sqlx::query_as::<_, DeviceRow>(SELECT_ACCOUNT_DEVICES)
            .bind(account_id.to_string())
            .fetch_all(self.reader())
            .await?;
        rows.into_iter().map(DeviceRow::record).collect()
    }

    async fn revoke_device(
        &self,
        account_id: AccountId,
        device_id: DeviceId,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let revoked = sqlx::query(REVOKE_DEVICE)
            .bind(device_id.to_string())
            .bind(account_id.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if revoked {
            sqlx::query(DELETE_DEVICE_LOGINS)
                .bind(device_id.to_string())
                .execute(&mut *tx)
                .await?;
            // A revoked device is never woken again, is in no
            // circle (facilitators' clients remove its MLS leaves),
            // and cannot be added to one.
            for statement in [
                super::push::DELETE_PUSH_TARGET,
                DELETE_DEVICE_ROSTER,
                DELETE_DEVICE_WELCOMES,
                DELETE_DEVICE_KEY_PACKAGES,
            ] {
                sqlx::query(statement)
                    .bind(device_id.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn delete_account(&self, account_id: AccountId) -> Result<()> {
        sqlx::query(DELETE_ACCOUNT)
            .bind(account_id.to_string())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn create_login(
        &self,
        login_id: LoginId,
        device_id: DeviceId,
        now: i64,
        token: &NewRefreshToken,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query(INSERT_LOGIN)
            .bind(login_id.0.to_string())
            .bind(device_id.to_string())
            .bind(now)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(INSERT_REFRESH_TOKEN)
            .bind(token.hash.as_slice())
            .bind(login_id.0.to_string())
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8; 32],
        next: &NewRefreshToken,
        now: i64,
    ) -> Result<RefreshOutcome> {
        let mut tx = self.write().await?;
        // The login first: a racing rotation or replay of the same
        // token waits here, then sees what the first one did.
        sqlx::query(This::LOCK_LOGIN_OF_REFRESH_TOKEN)
            .bind(presented_hash.as_slice())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = sqlx::query_as::<_, RefreshRow>(SELECT_REFRESH_TOKEN)
            .bind(presented_hash.as_slice())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(RefreshOutcome::Invalid);
        };
        let RefreshRow {
            login_id: login,
            used_at,
            expires_at,
            revoked_at: device_revoked,
            device_id,
        } = row;
        let device_id = parse_device_id(&device_id)?;

        let spent = used_at.is_none()
            && sqlx::query(SPEND_REFRESH_TOKEN)
                .bind(presented_hash.as_slice())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if !spent {
            // A spent token came back: someone holds a copy. End the login.
            sqlx::query(DELETE_LOGIN)
                .bind(&login)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused { device_id });
        }
        if expires_at < now || device_revoked.is_some() {
            tx.rollback().await?;
            return Ok(RefreshOutcome::Invalid);
        }
        sqlx::query(INSERT_REFRESH_TOKEN)
            .bind(next.hash.as_slice())
            .bind(&login)
            .bind(next.expires_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(EXTEND_LOGIN)
            .bind(&login)
            .bind(next.expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated {
            device_id,
            login_id: parse_login_id(&login)?,
        })
    }

    async fn end_login(&self, login_id: LoginId) -> Result<bool> {
        let done = sqlx::query(DELETE_LOGIN)
            .bind(login_id.0.to_string())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn live_login(
        &self,
        login_id: LoginId,
        device_id: DeviceId,
    ) -> Result<Option<LiveLogin>> {
        let account: Option<String> = sqlx::query_scalar(SELECT_LIVE_LOGIN)
            .bind(login_id.0.to_string())
            .bind(device_id.to_string())
            .fetch_optional(self.reader())
            .await?;
        account
            .map(|text| {
                Ok(LiveLogin {
                    device_id,
                    account_id: parse_account_id(&text)?,
                })
            })
            .transpose()
    }
}
