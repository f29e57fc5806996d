//! Challenges, device registration, login, refresh and logout.

use crate::auth::Authenticated;
use crate::crypto::{self, LINK_PREFIX, REFRESH_PREFIX};
use crate::error::ApiError;
use crate::hub::Event;
use crate::json::Body;
use crate::state::AppState;
use crate::storage::{LoginId, NewDevice, NewRefreshToken, RefreshOutcome};
use crate::telemetry::redact;
use actix_web::{HttpRequest, HttpResponse, web};
use ed25519_dalek::{Signature, VerifyingKey};
use hearth_protocol::auth::{
    CHALLENGE_LEN, Challenge, Login, LoginTokens, PUBLIC_KEY_LEN, RefreshRequest, RegisterDevice,
    RegisteredDevice, SIGNATURE_LEN, login_message, register_message,
};
use hearth_protocol::{Base64Bytes, DeviceId, ErrorBody};

fn fixed<const N: usize>(bytes: &Base64Bytes, what: &str) -> Result<[u8; N], ApiError> {
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| ApiError::Invalid(format!("{what} must be {N} bytes")))
}

fn signature(bytes: &Base64Bytes) -> Result<Signature, ApiError> {
    Ok(Signature::from_bytes(&fixed::<SIGNATURE_LEN>(
        bytes,
        "signature",
    )?))
}

/// Consumes the challenge; any failure is an authentication failure.
async fn take_challenge(
    state: &AppState,
    challenge: &Base64Bytes,
) -> Result<[u8; CHALLENGE_LEN], ApiError> {
    let challenge: [u8; CHALLENGE_LEN] = fixed(challenge, "challenge")?;
    if state
        .storage
        .take_challenge(&crypto::sha256(&challenge), crate::now())
        .await?
    {
        Ok(challenge)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Issues a fresh single-use challenge to sign for registration or login.
#[utoipa::path(post, path = "/v1/challenges", tag = "logins", responses(
    (status = 201, description = "A challenge to sign", body = Challenge),
    (status = 429, description = "Too many requests from this address", body = ErrorBody)))]
pub async fn create_challenge(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.limit_address(&req)?;
    let challenge = crypto::random_bytes::<CHALLENGE_LEN>()?;
    let expires_at = crate::now() + state.ttl(state.config.auth.challenge_ttl_secs);
    state
        .storage
        .insert_challenge(&crypto::sha256(&challenge), expires_at)
        .await?;
    Ok(HttpResponse::Created().json(Challenge {
        challenge: challenge.as_slice().into(),
        expires_at,
    }))
}

/// Registers a device by its Ed25519 key. Without a link token the device
/// gets a new account; with one, it joins the account that minted the token.
/// The answer carries a login for the device (as `POST /v1/logins` would).
#[utoipa::path(post, path = "/v1/devices", tag = "devices", request_body = RegisterDevice, responses(
    (status = 201, description = "Registered, with a login", body = RegisteredDevice),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "The challenge is unknown, used or expired, or the signature is wrong", body = ErrorBody),
    (status = 403, description = "The link token is unknown, used or expired", body = ErrorBody),
    (status = 409, description = "This public key is already registered", body = ErrorBody),
    (status = 413, description = "Body too large", body = ErrorBody),
    (status = 422, description = "A key, challenge or signature of the wrong length, or not a valid key", body = ErrorBody),
    (status = 429, description = "Too many requests from this address", body = ErrorBody)))]
pub async fn register_device(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Body<RegisterDevice>,
) -> Result<HttpResponse, ApiError> {
    state.limit_address(&req)?;
    let body = body.into_inner();
    let public_key: [u8; PUBLIC_KEY_LEN] = fixed(&body.public_key, "public_key")?;
    let verifying = VerifyingKey::from_bytes(&public_key)
        .ok()
        .filter(|key| !key.is_weak())
        .ok_or_else(|| ApiError::Invalid("public_key is not a valid Ed25519 key".into()))?;
    let signature = signature(&body.signature)?;
    let challenge = take_challenge(&state, &body.challenge).await?;
    verifying
        .verify_strict(&register_message(&challenge, &public_key), &signature)
        .map_err(|_| ApiError::Unauthorized)?;

    let device = NewDevice {
        id: crypto::new_device_id()?,
        public_key,
        created_at: crate::now(),
    };
    let account_id = match &body.link_token {
        Some(token) if token.starts_with(LINK_PREFIX) => {
            state
                .storage
                .link_device(
                    &crypto::sha256(token.as_bytes()),
                    device.created_at,
                    &device,
                )
                .await?
        }
        Some(_) => return Err(ApiError::LinkTokenInvalid),
        None => {
            let account_id = crypto::new_account_id()?;
            state.storage.create_account(account_id, &device).await?;
            account_id
        }
    };
    tracing::info!(
        device = %redact(&device.id),
        account = %redact(&account_id),
        linked = body.link_token.is_some(),
        "device registered"
    );
    let login = start_login(&state, device.id, LoginId(crypto::random_uuid()?)).await?;
    Ok(HttpResponse::Created().json(RegisteredDevice {
        account_id,
        device_id: device.id,
        login,
    }))
}

/// A fixed key to verify against when the device is unknown, so that an
/// unknown device costs the same work as a wrong signature.
fn decoy_key() -> VerifyingKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key()
}

/// Logs a device in by a signed challenge and starts a login.
#[utoipa::path(post, path = "/v1/logins", tag = "logins", request_body = Login, responses(
    (status = 201, description = "A new login", body = LoginTokens),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Unknown device, revoked device, wrong signature or bad challenge: all alike", body = ErrorBody),
    (status = 422, description = "A challenge or signature of the wrong length", body = ErrorBody),
    (status = 429, description = "Too many attempts from this address or for this device", body = ErrorBody)))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Body<Login>,
) -> Result<HttpResponse, ApiError> {
    state.limit_address(&req)?;
    state.limit_device(&body.device_id)?;
    let signature = signature(&body.signature)?;
    let challenge = take_challenge(&state, &body.challenge).await?;
    let device = state.storage.device(body.device_id).await?;
    let live_key = device
        .as_ref()
        .filter(|d| d.revoked_at.is_none())
        .and_then(|d| <[u8; 32]>::try_from(d.public_key.as_slice()).ok())
        .and_then(|key| VerifyingKey::from_bytes(&key).ok());
    let message = login_message(&challenge, &body.device_id);
    let verified = match &live_key {
        Some(key) => key.verify_strict(&message, &signature).is_ok(),
        None => {
            let _ = decoy_key().verify_strict(&message, &signature);
            false
        }
    };
    if !verified {
        return Err(ApiError::Unauthorized);
    }
    let login_id = LoginId(crypto::random_uuid()?);
    let tokens = start_login(&state, body.device_id, login_id).await?;
    tracing::info!(device = %redact(&body.device_id), "login started");
    Ok(HttpResponse::Created().json(tokens))
}

async fn start_login(
    state: &AppState,
    device_id: DeviceId,
    login_id: LoginId,
) -> Result<LoginTokens, ApiError> {
    let now = crate::now();
    let refresh = crypto::mint_token(REFRESH_PREFIX)?;
    let token = NewRefreshToken {
        hash: refresh.hash,
        expires_at: now + state.ttl(state.config.auth.refresh_token_ttl_secs),
    };
    state
        .storage
        .create_login(login_id, device_id, now, &token)
        .await?;
    state.tokens(device_id, login_id, refresh.token, now)
}

/// Exchanges a refresh token for a new access token and a new refresh token.
/// A refresh token works once: presenting a spent one ends the whole login.
#[utoipa::path(post, path = "/v1/logins/refresh", tag = "logins", request_body = RefreshRequest, responses(
    (status = 200, description = "Renewed", body = LoginTokens),
    (status = 400, description = "Malformed body", body = ErrorBody),
    (status = 401, description = "Unknown, expired or spent refresh token (a spent one ends its login)", body = ErrorBody),
    (status = 429, description = "Too many requests from this address", body = ErrorBody)))]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Body<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limit_address(&req)?;
    let now = crate::now();
    let next = crypto::mint_token(REFRESH_PREFIX)?;
    let presented = crypto::sha256(body.refresh_token.as_bytes());
    let token = NewRefreshToken {
        hash: next.hash,
        expires_at: now + state.ttl(state.config.auth.refresh_token_ttl_secs),
    };
    match state
        .storage
        .rotate_refresh_token(&presented, &token, now)
        .await?
    {
        RefreshOutcome::Rotated {
            device_id,
            login_id,
        } => Ok(HttpResponse::Ok().json(state.tokens(device_id, login_id, next.token, now)?)),
        RefreshOutcome::Reused { device_id } => {
            tracing::warn!("a spent refresh token was presented again; its login is revoked");
            // Its sockets hear of it now, not at their next safety check.
            state.delivery.publish(Event::Device(device_id)).await;
            Err(ApiError::Unauthorized)
        }
        RefreshOutcome::Invalid => Err(ApiError::Unauthorized),
    }
}

/// Ends the login of the access token: it and every refresh token of the
/// login stop working.
#[utoipa::path(delete, path = "/v1/logins/current", tag = "logins", security(("bearer" = [])), responses(
    (status = 204, description = "Logged out"),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn logout(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    state.storage.end_login(auth.login_id).await?;
    state.delivery.publish(Event::Device(auth.device_id)).await;
    Ok(HttpResponse::NoContent().finish())
}
