//! The `Storage` implementation both databases share, written once as a macro
//! over the backend's types. SQL text comes from `storage::sql`; what differs
//! per database comes from a few inherent methods each backend provides:
//!
//! - `BACKEND`: which [`super::Backend`] it is;
//! - `reader()` / `writer()`: the pools for reads and for single-statement
//!   writes (the same pool on PostgreSQL);
//! - `write()`: a write transaction (`BEGIN IMMEDIATE` on SQLite);
//! - `close_pools()`.
//!
//! Later work that must differ per database (row locks, notifications, group
//! commit) adds hooks here rather than copies of whole methods.

/// Expands to the row helpers and `impl Storage for $storage`. The invoking
/// module imports the names the body uses (see `sqlite.rs`).
macro_rules! shared_storage_impl {
    ($storage:ty, $db:ty, $row:ty) => {
        fn device_from_row(row: &$row) -> Result<DeviceRecord> {
            Ok(DeviceRecord {
                id: parse_device_id(row.try_get("id")?)?,
                account_id: parse_account_id(row.try_get("account_id")?)?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get("created_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        async fn insert_device(
            tx: &mut Transaction<'static, $db>,
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
        impl Storage for $storage {
            fn backend(&self) -> Backend {
                <$storage>::BACKEND
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn close(&self) {
                self.close_pools().await;
            }

            async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
                let rows = sqlx::query(sql::SELECT_SIGNING_KEYS)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(SigningKeyRecord {
                            kid: row.try_get("kid")?,
                            seed: seed_from_bytes(row.try_get("private_key")?)?,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
                sqlx::query(sql::INSERT_SIGNING_KEY)
                    .bind(&key.kid)
                    .bind(key.seed.expose_secret().as_slice())
                    .bind(key.created_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
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
                    sqlx::query(sql::DELETE_DEVICE_SESSIONS)
                        .bind(device_id.to_string())
                        .execute(&mut *tx)
                        .await?;
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

            async fn create_session(
                &self,
                session_id: SessionId,
                device_id: DeviceId,
                now: i64,
                token: &NewRefreshToken,
            ) -> Result<()> {
                let mut tx = self.write().await?;
                sqlx::query(sql::INSERT_SESSION)
                    .bind(session_id.0.to_string())
                    .bind(device_id.to_string())
                    .bind(now)
                    .bind(token.expires_at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::INSERT_REFRESH_TOKEN)
                    .bind(token.hash.as_slice())
                    .bind(session_id.0.to_string())
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
                let Some(row) = sqlx::query(sql::SELECT_REFRESH_TOKEN)
                    .bind(presented_hash.as_slice())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(RefreshOutcome::Invalid);
                };
                let session: String = row.try_get("session_id")?;
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
                    // A spent token came back: someone holds a copy. End the session.
                    sqlx::query(sql::DELETE_SESSION)
                        .bind(&session)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(RefreshOutcome::Reused);
                }
                if expires_at < now || device_revoked.is_some() {
                    tx.rollback().await?;
                    return Ok(RefreshOutcome::Invalid);
                }
                sqlx::query(sql::INSERT_REFRESH_TOKEN)
                    .bind(next.hash.as_slice())
                    .bind(&session)
                    .bind(next.expires_at)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::EXTEND_SESSION)
                    .bind(&session)
                    .bind(next.expires_at)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(RefreshOutcome::Rotated {
                    device_id,
                    session_id: parse_session_id(&session)?,
                })
            }

            async fn end_session(&self, session_id: SessionId) -> Result<bool> {
                let done = sqlx::query(sql::DELETE_SESSION)
                    .bind(session_id.0.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn live_session(
                &self,
                session_id: SessionId,
                device_id: DeviceId,
            ) -> Result<Option<LiveSession>> {
                let account: Option<String> = sqlx::query_scalar(sql::SELECT_LIVE_SESSION)
                    .bind(session_id.0.to_string())
                    .bind(device_id.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                account
                    .map(|text| {
                        Ok(LiveSession {
                            device_id,
                            account_id: parse_account_id(&text)?,
                        })
                    })
                    .transpose()
            }

            async fn purge_expired(&self, now: i64) -> Result<Purged> {
                let mut tx = self.write().await?;
                let mut purge = async |statement: &'static str| -> Result<u64> {
                    let done = sqlx::query(statement).bind(now).execute(&mut *tx).await?;
                    Ok(done.rows_affected())
                };
                let purged = Purged {
                    challenges: purge(sql::PURGE_CHALLENGES).await?,
                    link_tokens: purge(sql::PURGE_LINK_TOKENS).await?,
                    sessions: purge(sql::PURGE_REFRESH_TOKENS).await?
                        + purge(sql::PURGE_SESSIONS).await?,
                };
                tx.commit().await?;
                Ok(purged)
            }
        }
    };
}

pub(crate) use shared_storage_impl;
