//! Invite-only enrollment: facilitators mint invites and share them out of
//! band; an invitee redeems one, which queues a join request; the facilitator
//! declines it or approves it with a commit bundle that names it.

use super::UuidSegment;
use crate::auth::Authenticated;
use crate::crypto::{self, INVITE_PREFIX};
use crate::error::ApiError;
use crate::hub::Event;
use crate::json::Body;
use crate::state::{AppState, Quota};
use crate::storage::{NewInvite, NewJoinRequest, WakeFor};
use crate::telemetry::redact;
use actix_web::{HttpResponse, web};
use hearth_protocol::circles::{
    CreateInvite, Invite, InviteInfo, InviteList, JoinRequest, JoinRequestCreated, JoinRequestList,
    MAX_NOTE_BYTES, RedeemInvite,
};
use hearth_protocol::{CircleId, ErrorBody};

const DEFAULT_INVITE_SECS: u64 = 7 * 24 * 3600;
const MAX_INVITE_SECS: u64 = 30 * 24 * 3600;
const MAX_INVITE_USES: u32 = 50;

/// Mints an invite to the circle (facilitators only).
#[utoipa::path(post, path = "/v1/circles/{circle_id}/invites", tag = "invites", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = CreateInvite, responses(
    (status = 201, description = "The invite, with its token shown this once", body = Invite),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: the caller is a member, not a facilitator; quota_exceeded: the account has as many outstanding invites as allowed", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 422, description = "Lifetime or uses out of range", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<CreateInvite>,
) -> Result<HttpResponse, ApiError> {
    let circle = state
        .delivery
        .facilitated(&path, auth.device_id, "mint invites")
        .await?;
    let lifetime = body.expires_in_secs.unwrap_or(DEFAULT_INVITE_SECS);
    let max_uses = body.max_uses.unwrap_or(1);
    if !(60..=MAX_INVITE_SECS).contains(&lifetime) || !(1..=MAX_INVITE_USES).contains(&max_uses) {
        return Err(ApiError::Invalid(format!(
            "expires_in_secs must be 60..={MAX_INVITE_SECS} and max_uses 1..={MAX_INVITE_USES}"
        )));
    }
    state.within_quota(auth.account_id, Quota::Invites).await?;
    let minted = crypto::mint_token(INVITE_PREFIX)?;
    let now = crate::now();
    let invite = NewInvite {
        id: crypto::random_uuid()?,
        circle_id: circle.id.clone(),
        token_hash: minted.hash,
        expires_at: now + state.ttl(lifetime),
        max_uses: i64::from(max_uses),
        now,
    };
    state.storage.create_invite(&invite).await?;
    Ok(HttpResponse::Created().json(Invite {
        invite_id: invite.id,
        token: minted.token,
        circle_id: circle.id,
        expires_at: invite.expires_at,
        max_uses,
    }))
}

/// The circle's invites, without their tokens (facilitators only).
#[utoipa::path(get, path = "/v1/circles/{circle_id}/invites", tag = "invites", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "Oldest first", body = InviteList),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: the caller is a member, not a facilitator", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    state
        .delivery
        .facilitated(&path, auth.device_id, "list invites")
        .await?;
    let invites = state.storage.invites(&path).await?;
    Ok(HttpResponse::Ok().json(InviteList {
        invites: invites
            .into_iter()
            .map(|i| InviteInfo {
                invite_id: i.id,
                expires_at: i.expires_at,
                max_uses: u32::try_from(i.max_uses).unwrap_or_default(),
                uses: u32::try_from(i.uses).unwrap_or_default(),
            })
            .collect(),
    }))
}

/// Revokes an invite (facilitators only).
#[utoipa::path(delete, path = "/v1/circles/{circle_id}/invites/{invite_id}", tag = "invites", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url"),
           ("invite_id" = uuid::Uuid, Path, description = "The invite")),
    responses(
    (status = 204, description = "Revoked"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: the caller is a member, not a facilitator", body = ErrorBody),
    (status = 404, description = "No such circle or invite", body = ErrorBody)))]
pub async fn revoke(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(CircleId, UuidSegment)>,
) -> Result<HttpResponse, ApiError> {
    let (circle, UuidSegment(invite)) = path.into_inner();
    state
        .delivery
        .facilitated(&circle, auth.device_id, "revoke invites")
        .await?;
    if state.storage.revoke_invite(&circle, invite).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// Redeems an invite: queues a join request carrying the caller's account's
/// devices and the opaque introduction note.
#[utoipa::path(post, path = "/v1/invites/redeem", tag = "invites", security(("bearer" = [])),
    request_body = RedeemInvite, responses(
    (status = 201, description = "Join request queued", body = JoinRequestCreated),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "The invite is unknown, used up, revoked or expired", body = ErrorBody),
    (status = 409, description = "Already on the circle", body = ErrorBody),
    (status = 413, description = "Note larger than 4 KiB", body = ErrorBody),
    (status = 429, description = "Too many attempts", body = ErrorBody)))]
pub async fn redeem(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<RedeemInvite>,
) -> Result<HttpResponse, ApiError> {
    if body
        .note
        .as_ref()
        .is_some_and(|n| n.as_slice().len() > MAX_NOTE_BYTES)
    {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_NOTE_BYTES,
        });
    }
    state.limit_claims(&auth.device_id)?;
    let body = body.into_inner();
    if !body.token.starts_with(INVITE_PREFIX) {
        return Err(ApiError::InviteInvalid);
    }
    let devices = state.storage.account_devices(auth.account_id).await?;
    let request = NewJoinRequest {
        id: crypto::random_uuid()?,
        requester: auth.device_id,
        device_ids: devices.iter().map(|d| d.id).collect(),
        note: body.note.map(hearth_protocol::Base64Bytes::into_inner),
        now: crate::now(),
    };
    // A caller already in the circle is refused without spending a use.
    let Some(circle_id) = state
        .storage
        .redeem_invite(&crypto::sha256(body.token.as_bytes()), &request)
        .await?
    else {
        return Err(ApiError::InviteInvalid);
    };
    tracing::info!(circle = %redact(&circle_id), "join request queued");
    state
        .delivery
        .publish(Event::Circle(circle_id.clone()))
        .await;
    state
        .delivery
        .wake(WakeFor::Facilitators(circle_id.clone()));
    Ok(HttpResponse::Created().json(JoinRequestCreated {
        join_request_id: request.id,
        circle_id,
    }))
}

/// Pending join requests (facilitators only).
#[utoipa::path(get, path = "/v1/circles/{circle_id}/join-requests", tag = "invites", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "Oldest first", body = JoinRequestList),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: the caller is a member, not a facilitator", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn join_requests(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    state
        .delivery
        .facilitated(&path, auth.device_id, "read join requests")
        .await?;
    let requests = state.storage.join_requests(&path).await?;
    Ok(HttpResponse::Ok().json(JoinRequestList {
        join_requests: requests
            .into_iter()
            .map(|r| JoinRequest {
                join_request_id: r.id,
                device_ids: r.device_ids,
                note: r.note.map(Into::into),
                created_at: r.created_at,
            })
            .collect(),
    }))
}

/// Declines a join request (facilitators only).
#[utoipa::path(delete, path = "/v1/circles/{circle_id}/join-requests/{join_request_id}", tag = "invites", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url"),
           ("join_request_id" = uuid::Uuid, Path, description = "The request")),
    responses(
    (status = 204, description = "Declined"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: the caller is a member, not a facilitator", body = ErrorBody),
    (status = 404, description = "No such circle or request", body = ErrorBody)))]
pub async fn decline(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<(CircleId, UuidSegment)>,
) -> Result<HttpResponse, ApiError> {
    let (circle, UuidSegment(request)) = path.into_inner();
    state
        .delivery
        .facilitated(&circle, auth.device_id, "decline join requests")
        .await?;
    if state.storage.decline_join_request(&circle, request).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
