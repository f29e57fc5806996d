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
