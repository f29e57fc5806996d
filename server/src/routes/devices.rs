//! The caller's account: its devices, link tokens, and deletion.

use crate::auth::Authenticated;
use crate::config::FacilitatorPolicy;
use crate::crypto::{self, LINK_PREFIX};
use crate::error::ApiError;
use crate::hub::Event;
use crate::json::Body;
use crate::state::{AppState, Quota};
use crate::telemetry::redact;
use actix_web::{HttpResponse, web};
use hearth_protocol::auth::{
    DeviceInfo, DeviceList, FacilitatorCode, FacilitatorStatus, LinkToken,
};
use hearth_protocol::{DeviceId, ErrorBody};

/// Lists the active devices of the caller's account.
#[utoipa::path(get, path = "/v1/devices", tag = "devices", security(("bearer" = [])), responses(
    (status = 200, description = "The account's devices", body = DeviceList),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn list_devices(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let devices = state.storage.account_devices(auth.account_id).await?;
    Ok(HttpResponse::Ok().json(DeviceList {
        account_id: auth.account_id,
        devices: devices
            .into_iter()
            .map(|d| DeviceInfo {
                current: d.id == auth.device_id,
                device_id: d.id,
                public_key: d.public_key.into(),
                created_at: d.created_at,
            })
            .collect(),
    }))
}

/// Revokes a device of the caller's account (the caller's own included): its
/// logins end and its tokens stop working on their next use.
#[utoipa::path(delete, path = "/v1/devices/{device_id}", tag = "devices", security(("bearer" = [])),
    params(("device_id" = DeviceId, Path, description = "The device to revoke")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such active device on this account", body = ErrorBody)))]
pub async fn revoke_device(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse, ApiError> {
    let device_id = path.into_inner();
    let rooms = state.delivery.rooms_of(device_id).await?;
    if !state
        .storage
        .revoke_device(auth.account_id, device_id, crate::now())
        .await?
    {
        return Err(ApiError::NotFound);
    }
    for circle in &rooms {
        state.delivery.evict(circle, &[device_id]);
    }
    tracing::info!(device = %redact(&device_id), "device revoked");
    state.delivery.publish(Event::Device(device_id)).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Mints a one-time link token: a new device that presents it when
/// registering joins the caller's account.
#[utoipa::path(post, path = "/v1/link-tokens", tag = "devices", security(("bearer" = [])), responses(
    (status = 201, description = "A one-time link token", body = LinkToken),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "quota_exceeded: the account has as many devices as allowed", body = ErrorBody)))]
pub async fn create_link_token(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.within_quota(auth.account_id, Quota::Devices).await?;
    let minted = crypto::mint_token(LINK_PREFIX)?;
    let expires_at = crate::now() + state.ttl(state.config.auth.link_token_ttl_secs);
    state
        .storage
        .insert_link_token(&minted.hash, auth.account_id, expires_at)
        .await?;
    Ok(HttpResponse::Created().json(LinkToken {
        link_token: minted.token,
        expires_at,
    }))
}

/// Deletes the caller's account and everything it owns: every device, login,
/// token and link token.
#[utoipa::path(delete, path = "/v1/account", tag = "devices", security(("bearer" = [])), responses(
    (status = 204, description = "Deleted"),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn delete_account(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let devices = state.storage.account_devices(auth.account_id).await?;
    let mut rooms = Vec::new();
    for device in &devices {
        for circle in state.delivery.rooms_of(device.id).await? {
            rooms.push((circle, device.id));
        }
    }
    state.storage.delete_account(auth.account_id).await?;
    for (circle, device) in &rooms {
        state.delivery.evict(circle, &[*device]);
    }
    for device in devices {
        state.delivery.publish(Event::Device(device.id)).await;
    }
    tracing::info!(account = %redact(&auth.account_id), "account deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Whether the caller's account may open circles here: whether this server
/// asks for enrolment, and when the account was enrolled.
#[utoipa::path(get, path = "/v1/account/facilitator", tag = "devices", security(("bearer" = [])), responses(
    (status = 200, description = "The account's standing", body = FacilitatorStatus),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn facilitator_status(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let enrolled_at = state.storage.facilitator_since(auth.account_id).await?;
    Ok(HttpResponse::Ok().json(FacilitatorStatus {
        enrolment_required: state.config.accounts.facilitators == FacilitatorPolicy::Enrolled,
        enrolled_at,
    }))
}

/// Enrols the caller's account as a facilitator with a one-time code the
/// operator minted (`hearth-server admin facilitator-code`). Redeeming a
/// second code keeps the first enrolment date.
#[utoipa::path(post, path = "/v1/account/facilitator", tag = "devices", security(("bearer" = [])),
    request_body = FacilitatorCode, responses(
    (status = 200, description = "Enrolled", body = FacilitatorStatus),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "facilitator_code_invalid: unknown, used or expired", body = ErrorBody)))]
pub async fn enrol_facilitator(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<FacilitatorCode>,
) -> Result<HttpResponse, ApiError> {
    let code = body.into_inner().code;
    if !code.starts_with(crypto::FACILITATOR_PREFIX) {
        return Err(ApiError::FacilitatorCodeInvalid);
    }
    let enrolled_at = state
        .storage
        .redeem_facilitator_code(
            &crypto::sha256(code.as_bytes()),
            auth.account_id,
            crate::now(),
        )
        .await?
        .ok_or(ApiError::FacilitatorCodeInvalid)?;
    tracing::info!(account = %redact(&auth.account_id), "facilitator enrolled");
    Ok(HttpResponse::Ok().json(FacilitatorStatus {
        enrolment_required: state.config.accounts.facilitators == FacilitatorPolicy::Enrolled,
        enrolled_at: Some(enrolled_at),
    }))
}
