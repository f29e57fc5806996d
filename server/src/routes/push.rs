//! Push targets: a device registers where it can be woken, reads whether
//! that still works, and removes it; any device can ask which transports the
//! server offers (and the VAPID key Web Push subscriptions need).

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::json::Body;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use hearth_protocol::ErrorBody;
use hearth_protocol::push::{PushServices, PushStatus, PushTarget};

/// Which push transports this server sends through.
#[utoipa::path(get, path = "/v1/push/services", tag = "push", security(("bearer" = [])), responses(
    (status = 200, description = "The transports, and the VAPID key for Web Push", body = PushServices),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn services(
    state: web::Data<AppState>,
    _auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let services = state.push.as_ref().map_or(
        PushServices {
            web_push_vapid_key: None,
            apns: false,
            fcm: false,
        },
        |push| push.services(),
    );
    Ok(HttpResponse::Ok().json(services))
}

/// Registers where this device is woken, replacing its earlier target (and
/// reviving one marked dead). The server wakes the device, with a
/// content-free message, when something waits for it and none of its
/// sockets is live.
#[utoipa::path(put, path = "/v1/devices/current/push", tag = "push", security(("bearer" = [])),
    request_body = PushTarget,
    responses(
    (status = 200, description = "Registered", body = PushStatus),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 422, description = "push_unconfigured: the server does not send this kind; \
        push_endpoint_refused: the Web Push endpoint is not https or not public; \
        invalid_request: a key or token of the wrong shape", body = ErrorBody)))]
pub async fn put(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<PushTarget>,
) -> Result<HttpResponse, ApiError> {
    let target = body.into_inner();
    let Some(push) = &state.push else {
        return Err(ApiError::PushUnconfigured(target.kind()));
    };
    push.register(auth.device_id, &target).await?;
    let status = push
        .status(auth.device_id)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(HttpResponse::Ok().json(status))
}

/// This device's target and whether it still works: a target the push
/// service called gone is `working: false`, with when and why; register a
/// fresh one to be woken again.
#[utoipa::path(get, path = "/v1/devices/current/push", tag = "push", security(("bearer" = [])),
    responses(
    (status = 200, description = "The target's health", body = PushStatus),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No target registered", body = ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let Some(push) = &state.push else {
        return Err(ApiError::NotFound);
    };
    let status = push
        .status(auth.device_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(status))
}

/// Removes this device's target: it is not woken any more.
#[utoipa::path(delete, path = "/v1/devices/current/push", tag = "push", security(("bearer" = [])),
    responses(
    (status = 204, description = "Removed"),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No target registered", body = ErrorBody)))]
pub async fn delete(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    if !state.storage.delete_push_target(auth.device_id).await? {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}
