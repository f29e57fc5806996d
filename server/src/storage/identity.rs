//! Identity: accounts, devices, logins and refresh tokens, challenges,
//! link tokens, and the server's JWT signing keys.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::{AccountId, DeviceId};
use secrecy::SecretBox;
use uuid::Uuid;

/// A device about to be stored.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Its new random id.
    pub id: DeviceId,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub id: DeviceId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Its Ed25519 public key.
    pub public_key: Vec<u8>,
    /// Unix seconds when it registered.
    pub created_at: i64,
    /// Unix seconds when it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// One login: the family of refresh tokens descended from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginId(pub Uuid);

/// A refresh token about to be stored.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now spent and the new one replaces it.
    Rotated {
        /// The device the login belongs to.
        device_id: DeviceId,
        /// The login (unchanged by rotation).
        login_id: LoginId,
    },
    /// The token had already been rotated: the whole login is now revoked.
    Reused {
        /// The device whose login ended (its live sockets close).
        device_id: DeviceId,
    },
    /// Unknown, expired, or belongs to a revoked device.
    Invalid,
}

/// Who an access token speaks for, as far as the database still agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLogin {
    /// The device.
    pub device_id: DeviceId,
    /// Its account.
    pub account_id: AccountId,
}

/// A JWT signing key as stored: the Ed25519 seed under its key id.
#[derive(Debug)]
pub struct SigningKeyRecord {
    /// The `kid` header value for tokens signed with this key.
    pub kid: String,
    /// The 32-byte Ed25519 seed, or the seed wrapped under
    /// `auth.key_wrapping_key` (the key ring tells them apart).
    pub private_key: SecretBox<Vec<u8>>,
    /// Unix seconds; the newest key signs.
    pub created_at: i64,
}

/// Accounts, devices and logins.
#[async_trait]
pub trait IdentityStore {
    /// All JWT signing keys, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;

    /// Stores a signing key unless one with that `kid` exists already.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()>;

    /// Replaces the stored private key of `kid` (wrapping or unwrapping it).
    /// False when there is no such key.
    async fn rewrap_signing_key(&self, kid: &str, private_key: &[u8]) -> Result<bool>;

    /// Remembers a challenge (by hash) until it expires.
    async fn insert_challenge(&self, hash: &[u8; 32], expires_at: i64) -> Result<()>;

    /// Consumes a challenge: true exactly once for an unexpired challenge.
    async fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<bool>;

    /// Creates a new account holding one device.
    async fn create_account(&self, account_id: AccountId, device: &NewDevice) -> Result<()>;

    /// Consumes a link token and adds the device to the token's account.
    async fn link_device(
        &self,
        link_token_hash: &[u8; 32],
        now: i64,
        device: &NewDevice,
    ) -> Result<AccountId>;

    /// Stores a one-time link token for an account.
    async fn insert_link_token(
        &self,
        hash: &[u8; 32],
        account_id: AccountId,
        expires_at: i64,
    ) -> Result<()>;

    /// A device by id, revoked or not.
    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>>;

    /// An account's devices that are not revoked, oldest first.
    async fn account_devices(&self, account_id: AccountId) -> Result<Vec<DeviceRecord>>;

    /// Revokes a device of the account, ends its logins and deletes its push
    /// target. False when the account has no such active device.
    async fn revoke_device(
        &self,
        account_id: AccountId,
        device_id: DeviceId,
        now: i64,
    ) -> Result<bool>;

    /// Deletes the account and every row it owns.
    async fn delete_account(&self, account_id: AccountId) -> Result<()>;

    /// Starts a login for a device with its first refresh token.
    async fn create_login(
        &self,
        login_id: LoginId,
        device_id: DeviceId,
        now: i64,
        token: &NewRefreshToken,
    ) -> Result<()>;

    /// Spends a refresh token and stores its successor, or revokes the login
    /// when the token was already spent. One transaction.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8; 32],
        next: &NewRefreshToken,
        now: i64,
    ) -> Result<RefreshOutcome>;

    /// Ends a login (log out): its refresh tokens and access tokens stop
    /// working. False when there was no such login.
    async fn end_login(&self, login_id: LoginId) -> Result<bool>;

    /// The device and account behind an access token, when the login still
    /// exists and the device is not revoked.
    async fn live_login(&self, login_id: LoginId, device_id: DeviceId)
    -> Result<Option<LiveLogin>>;
}

/// This area's half of the `Storage` implementation both databases share,
/// expanded by `impl_storage!` inside each backend's module.
macro_rules! identity_sql {
    () => {
        fn device_from_row(row: &Row) -> Result<DeviceRecord> {
            Ok(DeviceRecord {
                id: parse_device_id(row.try_get("id")?)?,
                account_id: parse_account_id(row.try_get("account_id")?)?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        async fn insert_device(
            tx: &mut Transaction<'static, Db>,
            account_id: AccountId,
            device: &NewDevice,
        ) -> Result<()> {
            sqlx::query(sql::INSERT_DEVICE)
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
                let rows = sqlx::query(sql::SELECT_SIGNING_KEYS)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(SigningKeyRecord {
                            kid: row.try_get("kid")?,
                            private_key: secrecy::SecretBox::new(Box::new(
                                row.try_get("private_key")?,
                            )),
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
                sqlx::query(sql::INSERT_SIGNING_KEY)
                    .bind(&key.kid)
                    .bind(key.private_key.expose_secret().as_slice())
                    .bind(key.created_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn rewrap_signing_key(&self, kid: &str, private_key: &[u8]) -> Result<bool> {
                let done = sqlx::query(sql::REWRAP_SIGNING_KEY)
                    .bind(kid)
                    .bind(private_key)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_challenge(&self, hash: &[u8; 32], expires_at: i64) -> Result<()> {
                sqlx::query(sql::INSERT_CHALLENGE)
                    .bind(hash.as_slice())
                    .bind(expires_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<bool> {
                let expires_at: Option<i64> = sqlx::query_scalar(sql::TAKE_CHALLENGE)
                    .bind(hash.as_slice())
                    .fetch_optional(self.writer())
                    .await?;
                Ok(expires_at.is_some_and(|at| at >= now))
            }

            async fn create_account(
                &self,
                account_id: AccountId,
                device: &NewDevice,
            ) -> Result<()> {
                let mut tx = self.write().await?;
                sqlx::query(sql::INSERT_ACCOUNT)
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
                let row = sqlx::query(sql::TAKE_LINK_TOKEN)
                    .bind(link_token_hash.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else {
                    return Err(StorageError::LinkTokenInvalid);
                };
                if row.try_get::<i64, _>("expires_at")? < now {
                    // Spend the expired token anyway: it is of no further use.
                    tx.commit().await?;
                    return Err(StorageError::LinkTokenInvalid);
                }
                let account_id = parse_account_id(row.try_get("account_id")?)?;
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
                sqlx::query(sql::INSERT_LINK_TOKEN)
                    .bind(hash.as_slice())
                    .bind(account_id.to_string())
                    .bind(expires_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>> {
                let row = sqlx::query(sql::SELECT_DEVICE)
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(device_from_row).transpose()
            }

            async fn account_devices(&self, account_id: AccountId) -> Result<Vec<DeviceRecord>> {
                let rows = sqlx::query(sql::SELECT_ACCOUNT_DEVICES)
                    .bind(account_id.to_string())
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(device_from_row).collect()
            }

            async fn revoke_device(
                &self,
                account_id: AccountId,
                device_id: DeviceId,
                now: i64,
            ) -> Result<bool> {
                let mut tx = self.write().await?;
                let revoked = sqlx::query(sql::REVOKE_DEVICE)
                    .bind(device_id.to_string())
                    .bind(account_id.to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if revoked {
                    sqlx::query(sql::DELETE_DEVICE_LOGINS)
                        .bind(device_id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    // A revoked device is never woken again, is in no
                    // circle (facilitators' clients remove its MLS leaves),
                    // and cannot be added to one.
                    for statement in [
                        sql::DELETE_PUSH_TARGET,
                        sql::DELETE_DEVICE_ROSTER,
                        sql::DELETE_DEVICE_WELCOMES,
                        sql::DELETE_DEVICE_KEY_PACKAGES,
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
                sqlx::query(sql::DELETE_ACCOUNT)
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
                sqlx::query(sql::INSERT_LOGIN)
                    .bind(login_id.0.to_string())
                    .bind(device_id.to_string())
                    .bind(now)
                    .bind(token.expires_at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::INSERT_REFRESH_TOKEN)
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
                let Some(row) = sqlx::query(sql::SELECT_REFRESH_TOKEN)
                    .bind(presented_hash.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(RefreshOutcome::Invalid);
                };
                let login: String = row.try_get("login_id")?;
                let used_at: Option<i64> = row.try_get("used_at")?;
                let expires_at: i64 = row.try_get("expires_at")?;
                let device_revoked: Option<i64> = row.try_get("revoked_at")?;
                let device_id = parse_device_id(row.try_get("device_id")?)?;

                let spent = used_at.is_none()
                    && sqlx::query(sql::SPEND_REFRESH_TOKEN)
                        .bind(presented_hash.as_slice())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                if !spent {
                    // A spent token came back: someone holds a copy. End the login.
                    sqlx::query(sql::DELETE_LOGIN)
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
                sqlx::query(sql::INSERT_REFRESH_TOKEN)
                    .bind(next.hash.as_slice())
                    .bind(&login)
                    .bind(next.expires_at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::EXTEND_LOGIN)
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
                let done = sqlx::query(sql::DELETE_LOGIN)
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
                let account: Option<String> = sqlx::query_scalar(sql::SELECT_LIVE_LOGIN)
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
    };
}

pub(crate) use identity_sql;
