//! Uploading, counting and claiming KeyPackages.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::hub::Event;
use crate::json::Body;
use crate::mls::check_key_package;
use crate::state::AppState;
use crate::storage::KeyPackageStored;
use actix_web::{HttpResponse, web};
use hearth_protocol::ErrorBody;
use hearth_protocol::key_packages::{
    ClaimKeyPackages, ClaimedKeyPackage, ClaimedKeyPackages, DEFAULT_CIPHER_SUITE, KeyPackageCount,
    KeyPackageRejection, RejectedKeyPackage, UploadKeyPackages, UploadedKeyPackages,
};

async fn pool(state: &AppState, auth: &Authenticated) -> Result<KeyPackageCount, ApiError> {
    let (available, last_resort) = state
        .storage
        .key_package_count(auth.device_id, crate::now())
        .await?;
    Ok(KeyPackageCount {
        available,
        last_resort,
    })
}

/// Adds KeyPackages to the caller's pool, checking each one; refused ones are
/// listed with their reasons and the rest are stored.
#[utoipa::path(post, path = "/v1/key-packages", tag = "key-packages", security(("bearer" = [])),
    request_body = UploadKeyPackages, responses(
    (status = 200, description = "Stored what passed; the rest are listed with reasons", body = UploadedKeyPackages),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 413, description = "Body too large", body = ErrorBody),
    (status = 422, description = "More KeyPackages than one upload may carry", body = ErrorBody)))]
pub async fn upload(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<UploadKeyPackages>,
) -> Result<HttpResponse, ApiError> {
    let limits = &state.config.delivery;
    if body.key_packages.len() > limits.key_packages_per_upload {
        return Err(ApiError::Invalid(format!(
            "at most {} KeyPackages per upload",
            limits.key_packages_per_upload
        )));
    }
    let device = state
        .storage
        .device(auth.device_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = crate::now();
    let had_none = state.storage.key_package_count(auth.device_id, now).await? == (0, false);
    let mut rejected = Vec::new();
    let mut checked = Vec::new();
    let mut items = Vec::new();
    for (index, bytes) in body.key_packages.iter().enumerate() {
        let item = format!("key_packages[{index}]");
        match check_key_package(bytes.as_slice(), &auth.device_id, &device.public_key) {
            Ok(kp) if kp.last_resort => rejected.push(RejectedKeyPackage {
                item,
                reason: KeyPackageRejection::LastResortMismatch,
            }),
            Ok(kp) => {
                checked.push(kp.key_package);
                items.push(item);
            }
            Err(reason) => rejected.push(RejectedKeyPackage { item, reason }),
        }
    }
    let outcomes = state
        .storage
        .store_key_packages(auth.device_id, &checked, limits.key_package_pool, now)
        .await?;
    let mut accepted = 0;
    for (item, outcome) in items.into_iter().zip(outcomes) {
        match outcome {
            KeyPackageStored::Stored => accepted += 1,
            KeyPackageStored::Duplicate => rejected.push(RejectedKeyPackage {
                item,
                reason: KeyPackageRejection::Duplicate,
            }),
            KeyPackageStored::PoolFull => rejected.push(RejectedKeyPackage {
                item,
                reason: KeyPackageRejection::PoolFull,
            }),
        }
    }
    if let Some(bytes) = &body.last_resort {
        let item = "last_resort".to_owned();
        match check_key_package(bytes.as_slice(), &auth.device_id, &device.public_key) {
            Ok(kp) if !kp.last_resort => rejected.push(RejectedKeyPackage {
                item,
                reason: KeyPackageRejection::LastResortMismatch,
            }),
            Ok(kp) => {
                match state
                    .storage
                    .store_last_resort(auth.device_id, &kp.key_package, now)
                    .await?
                {
                    KeyPackageStored::Stored => accepted += 1,
                    _ => rejected.push(RejectedKeyPackage {
                        item,
                        reason: KeyPackageRejection::Duplicate,
                    }),
                }
            }
            Err(reason) => rejected.push(RejectedKeyPackage { item, reason }),
        }
    }
    if had_none && accepted > 0 {
        // A device that could not be added until now can be: the account's
        // other devices hear it live and bring it into their circles (a
        // newly linked device's first upload, typically).
        for other in state.storage.account_devices(auth.account_id).await? {
            if other.id != auth.device_id && other.revoked_at.is_none() {
                state.delivery.publish(Event::Linked(other.id)).await;
            }
        }
    }
    Ok(HttpResponse::Ok().json(UploadedKeyPackages {
        accepted,
        rejected,
        pool: pool(&state, &auth).await?,
    }))
}

/// The caller's pool: how many KeyPackages wait, and whether a last resort
/// is stored.
#[utoipa::path(get, path = "/v1/key-packages/count", tag = "key-packages", security(("bearer" = [])), responses(
    (status = 200, description = "The pool", body = KeyPackageCount),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn count(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(pool(&state, &auth).await?))
}

/// Claims one KeyPackage for each device: consumed from its pool, or, when
/// the pool is empty, its last resort (marked as such).
#[utoipa::path(post, path = "/v1/key-packages/claim", tag = "key-packages", security(("bearer" = [])),
    request_body = ClaimKeyPackages, responses(
    (status = 200, description = "One per device that had any", body = ClaimedKeyPackages),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 403, description = "claim_not_allowed: a device is neither the caller's own account's nor named in a pending join request of a circle the caller facilitates; not_facilitator: the join request's circle is not the caller's to approve in", body = ErrorBody),
    (status = 404, description = "The named join request is not pending, or the circle does not exist or is not the caller's", body = ErrorBody),
    (status = 422, description = "Too many devices in one claim, or devices and a join request both named", body = ErrorBody),
    (status = 429, description = "Too many claims", body = ErrorBody)))]
pub async fn claim(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Body<ClaimKeyPackages>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // Devices named by a join request were checked with it: pending, in a
    // circle the caller facilitates.
    let (device_ids, checked) = match &body.join_request {
        None => (body.device_ids, false),
        Some(_) if !body.device_ids.is_empty() => {
            return Err(ApiError::Invalid(
                "name devices or a join request, not both".into(),
            ));
        }
        Some(request) => {
            state
                .delivery
                .facilitated(&request.circle_id, auth.device_id, "approve join requests")
                .await?;
            let devices = state
                .storage
                .join_request(&request.circle_id, request.join_request_id)
                .await?
                .ok_or(ApiError::NotFound)?
                .device_ids;
            (devices, true)
        }
    };
    let limit = state.config.delivery.claim_devices;
    if device_ids.len() > limit {
        return Err(ApiError::Invalid(format!(
            "at most {limit} devices per claim"
        )));
    }
    state.limit_claims(&auth.device_id)?;
    let cipher_suite = body.cipher_suite.unwrap_or(DEFAULT_CIPHER_SUITE);
    for device_id in device_ids.iter().filter(|_| !checked) {
        if !state
            .storage
            .may_claim(auth.device_id, auth.account_id, *device_id)
            .await?
        {
            return Err(ApiError::ClaimNotAllowed);
        }
    }
    let now = crate::now();
    let mut claimed = ClaimedKeyPackages {
        key_packages: Vec::new(),
        unavailable: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    for device_id in device_ids.iter().filter(|d| seen.insert(**d)) {
        match state
            .storage
            .claim_key_package(*device_id, cipher_suite, now)
            .await?
        {
            Some((data, last_resort)) => claimed.key_packages.push(ClaimedKeyPackage {
                device_id: *device_id,
                key_package: data.into(),
                last_resort,
            }),
            None => claimed.unavailable.push(*device_id),
        }
    }
    Ok(HttpResponse::Ok().json(claimed))
}
