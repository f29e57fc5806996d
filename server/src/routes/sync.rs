//! One request for everything new across the caller's circles.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::json::Body;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use hearth_protocol::ErrorBody;
use hearth_protocol::sync::{SyncRequest, SyncResponse};

/// Everything new for the calling device, across the circles it names: the
/// entries after each cursor (a page per circle; `more` says to ask again
/// from `next_after`), the named circles it is no longer on, the Welcomes
/// waiting (each with its circle's log after the commit that added the
/// device), its KeyPackage pool and its account's devices. Each cursor is
/// also the device's acknowledgement of its circle up to there, and
/// `welcomes_done` deletes processed Welcomes: what a client processed rides
/// along in its next sync instead of a request of its own.
#[utoipa::path(post, path = "/v1/sync", tag = "circles", security(("bearer" = [])),
    request_body = SyncRequest, responses(
    (status = 200, description = "What is new", body = SyncResponse),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 422, description = "invalid: a circle named twice, a cursor out of range, too many cursors or Welcomes", body = ErrorBody)))]
pub async fn sync(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<SyncRequest>,
) -> Result<HttpResponse, ApiError> {
    let answer = state
        .delivery
        .sync(auth.caller(), body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(answer))
}
