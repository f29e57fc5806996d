//! Enrollment: invites (stored by token hash) and the join requests that
//! redeeming one queues for a circle's facilitators.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::{CircleId, DeviceId};
use uuid::Uuid;

/// An invite about to be stored.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Its id.
    pub id: Uuid,
    /// The circle it admits to.
    pub circle_id: CircleId,
    /// SHA-256 of the token.
    pub token_hash: [u8; 32],
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many times it may be redeemed.
    pub max_uses: i64,
    /// Unix seconds.
    pub now: i64,
}

/// A stored invite (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    /// Its id.
    pub id: Uuid,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// How many times it may be redeemed.
    pub max_uses: i64,
    /// How many times it was.
    pub uses: i64,
}

/// A join request about to be stored.
#[derive(Debug, Clone)]
pub struct NewJoinRequest {
    /// Its id.
    pub id: Uuid,
    /// The device that redeemed the invite.
    pub requester: DeviceId,
    /// The devices to add: the requester's account's active devices.
    pub device_ids: Vec<DeviceId>,
    /// The opaque introduction note.
    pub note: Option<Vec<u8>>,
    /// Unix seconds.
    pub now: i64,
}

/// A stored join request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequestRecord {
    /// Its id.
    pub id: Uuid,
    /// The devices to add.
    pub device_ids: Vec<DeviceId>,
    /// The opaque introduction note.
    pub note: Option<Vec<u8>>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Invites and join requests.
#[async_trait]
pub trait EnrollmentStore {
    /// Stores an invite.
    async fn create_invite(&self, invite: &NewInvite) -> Result<()>;

    /// A circle's invites.
    async fn invites(&self, circle: &CircleId) -> Result<Vec<InviteRecord>>;

    /// Deletes an invite. False when the circle has no such invite.
    async fn revoke_invite(&self, circle: &CircleId, id: Uuid) -> Result<bool>;

    /// Uses an invite (unexpired, uses left) and queues the join request, in
    /// one transaction. The circle, or `None` when the token is no good;
    /// [`StorageError::AlreadyOnRoster`](super::StorageError::AlreadyOnRoster),
    /// spending nothing, when the requester is in the circle already.
    async fn redeem_invite(
        &self,
        token_hash: &[u8; 32],
        request: &NewJoinRequest,
    ) -> Result<Option<CircleId>>;

    /// A circle's pending join requests, oldest first.
    async fn join_requests(&self, circle: &CircleId) -> Result<Vec<JoinRequestRecord>>;

    /// One pending join request.
    async fn join_request(&self, circle: &CircleId, id: Uuid) -> Result<Option<JoinRequestRecord>>;

    /// Deletes a join request (declined). False when there was none.
    async fn decline_join_request(&self, circle: &CircleId, id: Uuid) -> Result<bool>;
}

/// This area's half of the `Storage` implementation both databases share,
/// expanded by `impl_storage!` inside each backend's module.
macro_rules! enrollment_sql {
    () => {
        fn join_request_from_row(row: &Row) -> Result<JoinRequestRecord> {
            Ok(JoinRequestRecord {
                id: parse_uuid(row.try_get("id")?)?,
                device_ids: split_device_ids(row.try_get("device_ids")?)?,
                note: row.try_get("note")?,
                created_at: row.try_get("created_at")?,
            })
        }

        #[async_trait]
        impl EnrollmentStore for This {
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
                // A member redeeming (a link opened twice) spends no use.
                let on_roster: Option<String> = sqlx::query_scalar(sql::SELECT_ROSTER_DEVICE)
                    .bind(circle.as_slice())
                    .bind(request.requester.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                if on_roster.is_some() {
                    tx.rollback().await?;
                    return Err(StorageError::AlreadyOnRoster);
                }
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
        }
    };
}

pub(crate) use enrollment_sql;
