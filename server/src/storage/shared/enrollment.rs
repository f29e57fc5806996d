//! Enrollment: invites and join requests. The half of `enrollment.rs` that runs SQL, compiled once
//! for each database (see `shared/mod.rs`).

use super::*;

const INSERT_INVITE: &str = "INSERT INTO invites \
     (id, circle_id, token_hash, expires_at, max_uses, uses, created_at) \
     VALUES ($1, $2, $3, $4, $5, 0, $6)";

const SELECT_INVITES: &str = "SELECT id, expires_at, max_uses, uses FROM invites \
     WHERE circle_id = $1 ORDER BY created_at, id";

const DELETE_INVITE: &str = "DELETE FROM invites WHERE id = $1 AND circle_id = $2";

const USE_INVITE: &str = "UPDATE invites SET uses = uses + 1 \
     WHERE token_hash = $1 AND uses < max_uses AND expires_at > $2 RETURNING circle_id";

const INSERT_JOIN_REQUEST: &str = "INSERT INTO join_requests \
     (id, circle_id, requester_id, device_ids, note, created_at) VALUES ($1, $2, $3, $4, $5, $6)";

const SELECT_JOIN_REQUESTS: &str = "SELECT id, device_ids, note, created_at FROM join_requests \
     WHERE circle_id = $1 ORDER BY created_at, id";

const SELECT_JOIN_REQUEST: &str = "SELECT id, device_ids, note, created_at FROM join_requests \
     WHERE circle_id = $1 AND id = $2";

pub(super) const DELETE_JOIN_REQUEST: &str =
    "DELETE FROM join_requests WHERE circle_id = $1 AND id = $2";

/// A join request as stored (its devices one text, space-separated).
#[derive(sqlx::FromRow)]
struct JoinRequestRow {
    id: String,
    device_ids: String,
    note: Option<Vec<u8>>,
    created_at: i64,
}

impl JoinRequestRow {
    fn record(self) -> Result<JoinRequestRecord> {
        Ok(JoinRequestRecord {
            id: parse_uuid(&self.id)?,
            device_ids: split_device_ids(&self.device_ids)?,
            note: self.note,
            created_at: self.created_at,
        })
    }
}

/// An invite as stored.
#[derive(sqlx::FromRow)]
struct InviteRow {
    id: String,
    expires_at: i64,
    max_uses: i64,
    uses: i64,
}

#[async_trait]
impl EnrollmentStore for This {
    async fn create_invite(&self, invite: &NewInvite) -> Result<()> {
        sqlx::query(INSERT_INVITE)
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
        let rows = sqlx::query_as::<_, InviteRow>(SELECT_INVITES)
            .bind(circle.as_bytes())
            .fetch_all(self.reader())
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(InviteRecord {
                    id: parse_uuid(&row.id)?,
                    expires_at: row.expires_at,
                    max_uses: row.max_uses,
                    uses: row.uses,
                })
            })
            .collect()
    }

    async fn revoke_invite(&self, circle: &CircleId, id: Uuid) -> Result<bool> {
        let done = sqlx::query(DELETE_INVITE)
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
        let circle: Option<Vec<u8>> = sqlx::query_scalar(USE_INVITE)
            .bind(token_hash.as_slice())
            .bind(request.now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(circle) = circle else {
            tx.rollback().await?;
            return Ok(None);
        };
        // A member redeeming (a link opened twice) spends no use.
        let on_roster: Option<String> = sqlx::query_scalar(super::circles::SELECT_ROSTER_DEVICE)
            .bind(circle.as_slice())
            .bind(request.requester.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if on_roster.is_some() {
            tx.rollback().await?;
            return Err(StorageError::AlreadyOnRoster);
        }
        sqlx::query(INSERT_JOIN_REQUEST)
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
        let rows = sqlx::query_as::<_, JoinRequestRow>(SELECT_JOIN_REQUESTS)
            .bind(circle.as_bytes())
            .fetch_all(self.reader())
            .await?;
        rows.into_iter().map(JoinRequestRow::record).collect()
    }

    async fn join_request(&self, circle: &CircleId, id: Uuid) -> Result<Option<JoinRequestRecord>> {
        let row = sqlx::query_as::<_, JoinRequestRow>(SELECT_JOIN_REQUEST)
            .bind(circle.as_bytes())
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?;
        row.map(JoinRequestRow::record).transpose()
    }

    async fn decline_join_request(&self, circle: &CircleId, id: Uuid) -> Result<bool> {
        let done = sqlx::query(DELETE_JOIN_REQUEST)
            .bind(circle.as_bytes())
            .bind(id.to_string())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
