//! The `Storage` implementation both databases share, written once as a macro
//! over the backend's types. SQL text comes from `storage::sql`; what differs
//! per database comes from a few inherent methods each backend provides:
//!
//! - `BACKEND`: which [`super::Backend`] it is;
//! - `reader()` / `writer()`: the pools for reads and for single-statement
//!   writes (the same pool on PostgreSQL);
//! - `write()`: a write transaction (`BEGIN IMMEDIATE` on SQLite);
//! - `close_pools()`;
//! - `announce_event()` / `listen_events()`: cross-node wake-ups.
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

        fn join_request_from_row(row: &$row) -> Result<JoinRequestRecord> {
            Ok(JoinRequestRecord {
                id: parse_uuid(row.try_get("id")?)?,
                device_ids: split_device_ids(row.try_get("device_ids")?)?,
                note: row.try_get("note")?,
                created_at: row.try_get("created_at")?,
            })
        }

        async fn circle_with_roster(pool: &sqlx::Pool<$db>, row: &$row) -> Result<CircleRecord> {
            let id = parse_circle_id(row.try_get("id")?)?;
            let roster = sqlx::query(sql::SELECT_ROSTER)
                .bind(id.as_bytes())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(RosterRecord {
                        device_id: parse_device_id(r.try_get("device_id")?)?,
                        role: parse_role(r.try_get("role")?)?,
                        joined_seq: r.try_get("joined_seq")?,
                        acked_seq: r.try_get("acked_seq")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(CircleRecord {
                id,
                epoch: row.try_get("epoch")?,
                last_seq: row.try_get("last_seq")?,
                max_members: row.try_get("max_members")?,
                retention_secs: row.try_get("retention_secs")?,
                roster,
            })
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
                    sqlx::query(sql::DELETE_DEVICE_LOGINS)
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
                    return Ok(RefreshOutcome::Reused);
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
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(sql::INSERT_KEY_PACKAGE)
                    .bind(device_id.to_string())
                    .bind(item.hash_ref.as_slice())
                    .bind(item.data.as_slice())
                    .bind(1_i64)
                    .bind(item.expires_at)
                    .bind(now)
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
                now: i64,
            ) -> Result<Option<(Vec<u8>, bool)>> {
                let claimed: Option<Vec<u8>> = sqlx::query_scalar(<$storage>::CLAIM_KEY_PACKAGE)
                    .bind(device_id.to_string())
                    .bind(now)
                    .fetch_optional(self.writer())
                    .await?;
                if let Some(data) = claimed {
                    return Ok(Some((data, false)));
                }
                let last: Option<Vec<u8>> = sqlx::query_scalar(sql::SELECT_LAST_RESORT)
                    .bind(device_id.to_string())
                    .bind(now)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(last.map(|data| (data, true)))
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

            async fn create_circle(&self, circle: &NewCircle, creator: DeviceId) -> Result<()> {
                let mut tx = self.write().await?;
                sqlx::query(sql::INSERT_CIRCLE)
                    .bind(circle.id.as_bytes())
                    .bind(circle.max_members)
                    .bind(circle.retention_secs)
                    .bind(circle.group_info.as_deref())
                    .bind(circle.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|err| unique_violation(err, StorageError::CircleExists))?;
                sqlx::query(sql::INSERT_ROSTER)
                    .bind(circle.id.as_bytes())
                    .bind(creator.to_string())
                    .bind(role_name(Role::Facilitator))
                    .bind(0_i64)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn circle(&self, id: &CircleId) -> Result<Option<CircleRecord>> {
                let row = sqlx::query(sql::SELECT_CIRCLE)
                    .bind(id.as_bytes())
                    .fetch_optional(self.reader())
                    .await?;
                match row {
                    Some(row) => Ok(Some(circle_with_roster(self.reader(), &row).await?)),
                    None => Ok(None),
                }
            }

            async fn device_circles(&self, device_id: DeviceId) -> Result<Vec<CircleRecord>> {
                let rows = sqlx::query(sql::SELECT_DEVICE_CIRCLES)
                    .bind(device_id.to_string())
                    .fetch_all(self.reader())
                    .await?;
                let mut circles = Vec::with_capacity(rows.len());
                for row in &rows {
                    circles.push(circle_with_roster(self.reader(), row).await?);
                }
                Ok(circles)
            }

            async fn apply_commit(
                &self,
                circle: &CircleId,
                commit: &NewCommit,
            ) -> Result<CommitOutcome> {
                let mut tx = self.write().await?;
                let advanced = sqlx::query(sql::ADVANCE_EPOCH)
                    .bind(circle.as_bytes())
                    .bind(commit.epoch)
                    .bind(commit.group_info.as_deref())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(advanced) = advanced else {
                    let current: Option<i64> = sqlx::query_scalar(sql::SELECT_EPOCH)
                        .bind(circle.as_bytes())
                        .fetch_optional(&mut *tx)
                        .await?;
                    tx.rollback().await?;
                    return Ok(match current {
                        Some(current_epoch) => CommitOutcome::Stale { current_epoch },
                        None => CommitOutcome::NoCircle,
                    });
                };
                let epoch: i64 = advanced.try_get("epoch")?;
                let seq: i64 = advanced.try_get("last_seq")?;
                sqlx::query(sql::INSERT_LOG_ENTRY)
                    .bind(circle.as_bytes())
                    .bind(seq)
                    .bind(commit.epoch)
                    .bind(kind_code(EntryKind::Commit))
                    .bind(commit.sender.to_string())
                    .bind(None::<String>)
                    .bind(None::<Vec<u8>>)
                    .bind(commit.commit.as_slice())
                    .bind(commit.now)
                    .execute(&mut *tx)
                    .await?;
                for removed in &commit.removed {
                    sqlx::query(sql::DELETE_ROSTER)
                        .bind(circle.as_bytes())
                        .bind(removed.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                for (added, welcome_id) in &commit.added {
                    sqlx::query(sql::INSERT_ROSTER)
                        .bind(circle.as_bytes())
                        .bind(added.to_string())
                        .bind(role_name(Role::Member))
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                    if let Some(welcome) = &commit.welcome {
                        sqlx::query(sql::INSERT_WELCOME)
                            .bind(welcome_id.to_string())
                            .bind(added.to_string())
                            .bind(circle.as_bytes())
                            .bind(seq)
                            .bind(epoch)
                            .bind(welcome.as_slice())
                            .bind(commit.now)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                if let Some(request) = commit.join_request {
                    sqlx::query(sql::DELETE_JOIN_REQUEST)
                        .bind(circle.as_bytes())
                        .bind(request.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(CommitOutcome::Accepted { seq, epoch })
            }

            async fn append_message(
                &self,
                circle: &CircleId,
                message: &NewMessage,
                epoch_window: i64,
            ) -> Result<AppendOutcome> {
                let mut tx = self.write().await?;
                // Taking the next number first locks the circle (PostgreSQL's row
                // lock; SQLite's single writer), so what follows sees every
                // earlier append of this circle.
                let Some(next) = sqlx::query(sql::NEXT_SEQ)
                    .bind(circle.as_bytes())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    tx.rollback().await?;
                    return Ok(AppendOutcome::NotMember);
                };
                let epoch: i64 = next.try_get("epoch")?;
                let seq: i64 = next.try_get("last_seq")?;
                let member = sqlx::query(sql::SELECT_MEMBER)
                    .bind(circle.as_bytes())
                    .bind(message.sender.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if member.is_none() {
                    tx.rollback().await?;
                    return Ok(AppendOutcome::NotMember);
                }
                let earlier = sqlx::query(sql::SELECT_BY_MESSAGE_ID)
                    .bind(circle.as_bytes())
                    .bind(message.sender.to_string())
                    .bind(message.message_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(earlier) = earlier {
                    let digest: Option<Vec<u8>> = earlier.try_get("digest")?;
                    let earlier_seq: i64 = earlier.try_get("seq")?;
                    tx.rollback().await?;
                    return Ok(if digest.as_deref() == Some(message.digest.as_slice()) {
                        AppendOutcome::Repeated {
                            seq: earlier_seq,
                            epoch,
                        }
                    } else {
                        AppendOutcome::Conflict
                    });
                }
                if message.epoch > epoch || message.epoch < epoch.saturating_sub(epoch_window) {
                    tx.rollback().await?;
                    return Ok(AppendOutcome::Stale {
                        current_epoch: epoch,
                    });
                }
                sqlx::query(sql::INSERT_LOG_ENTRY)
                    .bind(circle.as_bytes())
                    .bind(seq)
                    .bind(message.epoch)
                    .bind(kind_code(EntryKind::Application))
                    .bind(message.sender.to_string())
                    .bind(message.message_id.to_string())
                    .bind(message.digest.as_slice())
                    .bind(message.ciphertext.as_slice())
                    .bind(message.now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(AppendOutcome::Accepted { seq, epoch })
            }

            async fn read_log(
                &self,
                circle: &CircleId,
                device_id: DeviceId,
                after: i64,
                limit: i64,
            ) -> Result<Option<Vec<LogRecord>>> {
                let Some(member) = sqlx::query(sql::SELECT_MEMBER)
                    .bind(circle.as_bytes())
                    .bind(device_id.to_string())
                    .fetch_optional(self.reader())
                    .await?
                else {
                    return Ok(None);
                };
                let joined: i64 = member.try_get("joined_seq")?;
                let rows = sqlx::query(sql::SELECT_LOG)
                    .bind(circle.as_bytes())
                    .bind(after.max(joined))
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(LogRecord {
                            seq: row.try_get("seq")?,
                            epoch: row.try_get("epoch")?,
                            kind: parse_kind(row.try_get("kind")?)?,
                            sender: parse_device_id(row.try_get("sender_id")?)?,
                            ciphertext: row.try_get("ciphertext")?,
                            created_at: row.try_get("created_at")?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Some)
            }

            async fn acknowledge(
                &self,
                circle: &CircleId,
                device_id: DeviceId,
                seq: i64,
            ) -> Result<bool> {
                let mut tx = self.write().await?;
                let member = sqlx::query(sql::SELECT_MEMBER)
                    .bind(circle.as_bytes())
                    .bind(device_id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if member.is_none() {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let last_seq: i64 = sqlx::query_scalar(sql::SELECT_LAST_SEQ)
                    .bind(circle.as_bytes())
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(sql::RAISE_ACK)
                    .bind(circle.as_bytes())
                    .bind(device_id.to_string())
                    .bind(seq.min(last_seq))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::DELETE_ACKNOWLEDGED)
                    .bind(circle.as_bytes())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn group_info(&self, circle: &CircleId) -> Result<Option<Vec<u8>>> {
                let info: Option<Option<Vec<u8>>> = sqlx::query_scalar(sql::SELECT_GROUP_INFO)
                    .bind(circle.as_bytes())
                    .fetch_optional(self.reader())
                    .await?;
                Ok(info.flatten())
            }

            async fn welcomes(&self, device_id: DeviceId) -> Result<Vec<WelcomeRecord>> {
                let rows = sqlx::query(sql::SELECT_WELCOMES)
                    .bind(device_id.to_string())
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(WelcomeRecord {
                            id: parse_uuid(row.try_get("id")?)?,
                            circle_id: parse_circle_id(row.try_get("circle_id")?)?,
                            seq: row.try_get("seq")?,
                            epoch: row.try_get("epoch")?,
                            data: row.try_get("data")?,
                        })
                    })
                    .collect()
            }

            async fn delete_welcome(&self, device_id: DeviceId, id: Uuid) -> Result<bool> {
                let done = sqlx::query(sql::DELETE_WELCOME)
                    .bind(id.to_string())
                    .bind(device_id.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_invite(&self, invite: &NewInvite) -> Result<()> {
                sqlx::query(sql::INSERT_INVITE)
                    .bind(invite.id.to_string())
                    .bind(invite.circle_id.as_bytes())
                    .bind(invite.token_hash.as_slice())
                    .bind(invite.expires_at)
                    .bind(invite.max_uses)
                    .bind(invite.now)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn invites(&self, circle: &CircleId) -> Result<Vec<InviteRecord>> {
                let rows = sqlx::query(sql::SELECT_INVITES)
                    .bind(circle.as_bytes())
                    .fetch_all(self.reader())
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(InviteRecord {
                            id: parse_uuid(row.try_get("id")?)?,
                            expires_at: row.try_get("expires_at")?,
                            max_uses: row.try_get("max_uses")?,
                            uses: row.try_get("uses")?,
                        })
                    })
                    .collect()
            }

            async fn revoke_invite(&self, circle: &CircleId, id: Uuid) -> Result<bool> {
                let done = sqlx::query(sql::DELETE_INVITE)
                    .bind(id.to_string())
                    .bind(circle.as_bytes())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn redeem_invite(
                &self,
                token_hash: &[u8; 32],
                request: &NewJoinRequest,
            ) -> Result<Option<CircleId>> {
                let mut tx = self.write().await?;
                let circle: Option<Vec<u8>> = sqlx::query_scalar(sql::USE_INVITE)
                    .bind(token_hash.as_slice())
                    .bind(request.now)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(circle) = circle else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                sqlx::query(sql::INSERT_JOIN_REQUEST)
                    .bind(request.id.to_string())
                    .bind(circle.as_slice())
                    .bind(request.requester.to_string())
                    .bind(join_device_ids(&request.device_ids))
                    .bind(request.note.as_deref())
                    .bind(request.now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                parse_circle_id(circle).map(Some)
            }

            async fn join_requests(&self, circle: &CircleId) -> Result<Vec<JoinRequestRecord>> {
                let rows = sqlx::query(sql::SELECT_JOIN_REQUESTS)
                    .bind(circle.as_bytes())
                    .fetch_all(self.reader())
                    .await?;
                rows.iter().map(join_request_from_row).collect()
            }

            async fn join_request(
                &self,
                circle: &CircleId,
                id: Uuid,
            ) -> Result<Option<JoinRequestRecord>> {
                let row = sqlx::query(sql::SELECT_JOIN_REQUEST)
                    .bind(circle.as_bytes())
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                row.as_ref().map(join_request_from_row).transpose()
            }

            async fn decline_join_request(&self, circle: &CircleId, id: Uuid) -> Result<bool> {
                let done = sqlx::query(sql::DELETE_JOIN_REQUEST)
                    .bind(circle.as_bytes())
                    .bind(id.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn announce(&self, event: &str) -> Result<()> {
                self.announce_event(event).await
            }

            async fn listen(&self, deliver: Box<dyn Fn(String) + Send + Sync>) -> Result<()> {
                self.listen_events(deliver).await
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
                    logins: purge(sql::PURGE_REFRESH_TOKENS).await?
                        + purge(sql::PURGE_LOGINS).await?,
                    key_packages: purge(sql::PURGE_KEY_PACKAGES).await?,
                    log_entries: purge(sql::PURGE_LOG).await? + purge(sql::PURGE_WELCOMES).await?,
                    invites: purge(sql::PURGE_INVITES).await?,
                };
                tx.commit().await?;
                Ok(purged)
            }
        }
    };
}

pub(crate) use shared_storage_impl;
