//! Circles: creation, the roster, commit bundles, the message log,
//! acknowledgements, GroupInfo and Welcomes.
//!
//! To anyone not on a circle's roster, a real circle and a made-up id answer
//! identically: 404 `not_found`.

use crate::auth::Authenticated;
use crate::config::FacilitatorPolicy;
use crate::delivery::{Sent, bounded, signed, unsigned};
use crate::error::ApiError;
use crate::framing;
use crate::json::Body;
use crate::state::{AppState, Quota};
use crate::storage::{CircleRecord, NewCircle, WelcomeRecord};
use crate::telemetry::redact;
use actix_web::{HttpResponse, web};
use hearth_protocol::circles::{
    Accepted, Ack, Circle, CircleList, CommitBundle, CreateCircle, GroupInfo, LogPage, RosterEntry,
    SendMessage, WelcomeList,
};
use hearth_protocol::{Base64Bytes, CircleId, ErrorBody};
use serde::Deserialize;

fn to_wire(circle: CircleRecord) -> Circle {
    Circle {
        circle_id: circle.id,
        epoch: unsigned(circle.epoch),
        last_seq: unsigned(circle.last_seq),
        max_members: u32::try_from(circle.max_members).unwrap_or_default(),
        retention_secs: unsigned(circle.retention_secs),
        roster: circle
            .roster
            .into_iter()
            .map(|r| RosterEntry {
                device_id: r.device_id,
                role: r.role,
            })
            .collect(),
    }
}

/// Registers an MLS group the caller created as a circle; the caller becomes
/// its facilitator at epoch 0.
#[utoipa::path(post, path = "/v1/circles", tag = "circles", security(("bearer" = [])),
    request_body = CreateCircle, responses(
    (status = 201, description = "Created", body = Circle),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_enrolled: only enrolled facilitators open circles here; quota_exceeded: the account facilitates as many circles as allowed", body = ErrorBody),
    (status = 409, description = "A circle with this id exists", body = ErrorBody),
    (status = 413, description = "GroupInfo too large", body = ErrorBody),
    (status = 422, description = "Member limit or retention out of range (invalid_request), or group_info is not this group's GroupInfo at epoch 0 (mls_framing)", body = ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<CreateCircle>,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.config.delivery;
    let body = body.into_inner();
    let max_members = body.max_members.unwrap_or(limits.default_max_members);
    if max_members == 0 || max_members > limits.max_members_bound {
        return Err(ApiError::Invalid(format!(
            "max_members must be between 1 and {}",
            limits.max_members_bound
        )));
    }
    let retention = body.retention_secs.unwrap_or(limits.default_retention_secs);
    if !(60..=limits.max_retention_secs).contains(&retention) {
        return Err(ApiError::Invalid(format!(
            "retention_secs must be between 60 and {}",
            limits.max_retention_secs
        )));
    }
    if let Some(info) = &body.group_info {
        bounded(info.as_slice(), limits.max_ciphertext_bytes, "group_info")?;
        framing::group_info(info.as_slice(), &body.circle_id, 0)?;
    }
    let circle = NewCircle {
        id: body.circle_id.clone(),
        max_members: i64::from(max_members),
        retention_secs: signed(retention),
        group_info: body.group_info.map(Base64Bytes::into_inner),
        created_at: crate::now(),
    };
    if state.config.accounts.facilitators == FacilitatorPolicy::Enrolled
        && state
            .storage
            .facilitator_since(auth.account_id)
            .await?
            .is_none()
    {
        return Err(ApiError::NotEnrolled);
    }
    state.within_quota(auth.account_id, Quota::Circles).await?;
    state.storage.create_circle(&circle, auth.device_id).await?;
    tracing::info!(circle = %redact(&circle.id), "circle created");
    let created = state
        .delivery
        .membership(&circle.id, auth.device_id)
        .await?;
    Ok(HttpResponse::Created().json(to_wire(created)))
}

/// The circles the calling device is on.
#[utoipa::path(get, path = "/v1/circles", tag = "circles", security(("bearer" = [])), responses(
    (status = 200, description = "The caller's circles", body = CircleList),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let circles = state.storage.device_circles(auth.device_id).await?;
    Ok(HttpResponse::Ok().json(CircleList {
        circles: circles.into_iter().map(to_wire).collect(),
    }))
}

/// A circle: epoch, policy and roster. Members only.
#[utoipa::path(get, path = "/v1/circles/{circle_id}", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "The circle", body = Circle),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    let circle = state.delivery.membership(&path, auth.device_id).await?;
    Ok(HttpResponse::Ok().json(to_wire(circle)))
}

/// Posts a commit with its Welcome, GroupInfo and roster change. Accepted
/// only at the circle's current epoch; of racing commits exactly one wins and
/// the others get `409 stale_epoch` with the current epoch. Also the way to
/// rejoin: an external commit at the current epoch, with no roster change.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/commits", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = CommitBundle, responses(
    (status = 201, description = "Accepted", body = Accepted),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: only a facilitator adds or removes others (anyone may add or remove devices of their own account)", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 409, description = "stale_epoch: the circle moved on; the body carries current_epoch", body = ErrorBody),
    (status = 413, description = "Commit, Welcome or GroupInfo too large", body = ErrorBody),
    (status = 422, description = "The roster change breaks a roster rule: duplicate_device, device_on_roster, device_not_on_roster, unknown_device, welcome_missing, unknown_join_request, join_request_mismatch or circle_full; or the MLS does not match the request: mls_framing (commit is not a PrivateMessage commit of this group at the declared epoch, welcome not a Welcome, group_info not this group's GroupInfo at the next epoch), public_commit (a member's commit as PublicMessage); or an external commit changes others' places (invalid_request)", body = ErrorBody)))]
pub async fn commit(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<CommitBundle>,
) -> Result<HttpResponse, ApiError> {
    let accepted = state
        .delivery
        .commit(auth.caller(), &path, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(accepted))
}

/// Appends an application message. Resending the same `message_id` with the
/// same bytes answers 200 with the original sequence number.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/messages", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = SendMessage, responses(
    (status = 201, description = "Appended", body = Accepted),
    (status = 200, description = "Already appended earlier with the same bytes", body = Accepted),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 409, description = "duplicate_message_id, or stale_epoch (outside the accepted window)", body = ErrorBody),
    (status = 413, description = "Ciphertext larger than the limit", body = ErrorBody),
    (status = 422, description = "mls_framing: ciphertext is not a PrivateMessage carrying application data for this group at the declared epoch; unpadded_message: its ciphertext is not padded (docs/PROTOCOL.md)", body = ErrorBody),
    (status = 429, description = "Sending too fast", body = ErrorBody)))]
pub async fn send(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<SendMessage>,
) -> Result<HttpResponse, ApiError> {
    Ok(
        match state
            .delivery
            .append(auth.device_id, &path, body.into_inner())
            .await?
        {
            Sent::New(accepted) => HttpResponse::Created().json(accepted),
            Sent::Repeated(accepted) => HttpResponse::Ok().json(accepted),
        },
    )
}

/// Where to start reading and how much.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Entries after this sequence number (default 0).
    #[serde(default)]
    #[param(required = false)]
    pub after: u64,
    /// At most this many (default and maximum: the page size, 100).
    pub limit: Option<u32>,
}

/// A page of the circle's log after a cursor: commits and application
/// messages in order. A device reads only what came after it joined.
#[utoipa::path(get, path = "/v1/circles/{circle_id}/messages", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url"), PageQuery),
    responses(
    (status = 200, description = "A page", body = LogPage),
    (status = 400, description = "Malformed query", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn read(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    if i64::try_from(query.after).is_err() || query.limit.is_some_and(|l| i32::try_from(l).is_err())
    {
        return Err(ApiError::BadRequest("a number is out of range".into()));
    }
    let page = state
        .delivery
        .read(auth.device_id, &path, query.after, query.limit)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Records that the calling device processed the log up to `seq`. Entries
/// every device on the roster has acknowledged are deleted.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/ack", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = Ack, responses(
    (status = 204, description = "Recorded"),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody)))]
pub async fn ack(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<Ack>,
) -> Result<HttpResponse, ApiError> {
    state
        .delivery
        .acknowledge(auth.device_id, &path, body.seq)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The latest GroupInfo, for a member whose state broke and who rejoins by
/// external commit.
#[utoipa::path(get, path = "/v1/circles/{circle_id}/group-info", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "The latest GroupInfo", body = GroupInfo),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, not on it, or no GroupInfo posted", body = ErrorBody)))]
pub async fn group_info(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    let info = state
        .delivery
        .read_as_member(&path, auth.device_id, state.storage.group_info(&path))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(GroupInfo {
        epoch: unsigned(info.epoch),
        group_info: info.group_info.into(),
    }))
}

/// Welcomes waiting for the calling device.
#[utoipa::path(get, path = "/v1/welcomes", tag = "circles", security(("bearer" = [])), responses(
    (status = 200, description = "Oldest first", body = WelcomeList),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn welcomes(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let welcomes = state.storage.welcomes(auth.device_id).await?;
    Ok(HttpResponse::Ok().json(WelcomeList {
        welcomes: welcomes
            .into_iter()
            .map(WelcomeRecord::into_pending)
            .collect(),
    }))
}

/// Acknowledges a Welcome: it is deleted.
#[utoipa::path(delete, path = "/v1/welcomes/{welcome_id}", tag = "circles", security(("bearer" = [])),
    params(("welcome_id" = uuid::Uuid, Path, description = "The Welcome")),
    responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such Welcome for this device", body = ErrorBody)))]
pub async fn delete_welcome(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<super::UuidSegment>,
) -> Result<HttpResponse, ApiError> {
    if state
        .storage
        .delete_welcome(auth.device_id, path.into_inner().0)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
