//! The schedule snapshot slot: one opaque blob per circle that facilitators
//! keep current (an MLS application message holding the calendar), so a
//! member who joins late can see the series, its changes and the agreement.
//! The server stores the blob, its version and when it was written.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::json::Body;
use crate::state::AppState;
use crate::storage::SnapshotOutcome;
use actix_web::{HttpResponse, web};
use hearth_protocol::circles::{PutSnapshot, Snapshot, SnapshotWritten};
use hearth_protocol::{CircleId, ErrorBody};

/// Replaces the circle's snapshot (facilitators), if the stored version is
/// the one the body names (0 for the first). Of two writers racing, one wins;
/// the other gets `409 snapshot_conflict` with `current_version`.
#[utoipa::path(put, path = "/v1/circles/{circle_id}/snapshot", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    request_body = PutSnapshot, responses(
    (status = 200, description = "Stored", body = SnapshotWritten),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "not_facilitator: the caller is a member, not a facilitator", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 409, description = "snapshot_conflict: another version is stored; the body carries current_version", body = ErrorBody),
    (status = 413, description = "Snapshot larger than the ciphertext limit", body = ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
    body: Body<PutSnapshot>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.config.delivery.max_ciphertext_bytes;
    if body.snapshot.as_slice().len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    state
        .delivery
        .facilitated(&path, auth.device_id, "write the schedule snapshot")
        .await?;
    let replaces = i64::try_from(body.version).unwrap_or(i64::MAX);
    let outcome = state
        .storage
        .put_snapshot(&path, replaces, body.snapshot.as_slice(), crate::now())
        .await?;
    let unsigned = |v: i64| u64::try_from(v).unwrap_or_default();
    match outcome {
        SnapshotOutcome::Written { version } => Ok(HttpResponse::Ok().json(SnapshotWritten {
            version: unsigned(version),
        })),
        SnapshotOutcome::Conflict { current_version } => Err(ApiError::SnapshotConflict {
            current_version: unsigned(current_version),
        }),
    }
}

/// The circle's snapshot, for devices on its roster.
#[utoipa::path(get, path = "/v1/circles/{circle_id}/snapshot", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "The snapshot", body = Snapshot),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, not on it, or no snapshot written yet", body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    let stored = state
        .delivery
        .read_as_member(&path, auth.device_id, state.storage.snapshot(&path))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(Snapshot {
        version: u64::try_from(stored.version).unwrap_or_default(),
        snapshot: stored.data.into(),
        updated_at: stored.updated_at,
    }))
}
