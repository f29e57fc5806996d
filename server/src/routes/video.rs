//! Video: a device on a circle's roster gets a LiveKit access token for the
//! circle's room. Room names and identities are opaque keyed hashes, so the
//! SFU learns no Hearth id; the media itself is SFrame-encrypted with keys
//! from the circle's MLS group, which the server never has.

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, web};
use hearth_protocol::video::CallAccess;
use hearth_protocol::{CircleId, ErrorBody};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret as _;
use serde::Serialize;

/// LiveKit's video grant: this room, join, publish and subscribe, nothing
/// else (no data channel, no metadata, no admin).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoGrant {
    room: String,
    room_join: bool,
    can_publish: bool,
    can_subscribe: bool,
    can_publish_data: bool,
}

/// The claims of a LiveKit access token.
#[derive(Serialize)]
struct LiveKitClaims {
    iss: String,
    sub: String,
    nbf: i64,
    exp: i64,
    video: VideoGrant,
}

/// An access token to the circle's room on the video server, for a device on
/// the roster. 503 `video_unconfigured` when the server has no video server.
#[utoipa::path(post, path = "/v1/circles/{circle_id}/call", tag = "circles", security(("bearer" = [])),
    params(("circle_id" = CircleId, Path, description = "The MLS group id, base64url")),
    responses(
    (status = 200, description = "The room and a token to join it", body = CallAccess),
    (status = 401, description = "Not authenticated", body = ErrorBody),
    (status = 404, description = "No such circle, or the caller is not on it", body = ErrorBody),
    (status = 503, description = "video_unconfigured: this server has no video server", body = ErrorBody)))]
pub async fn call(
    state: web::Data<AppState>,
    auth: Authenticated,
    path: web::Path<CircleId>,
) -> Result<HttpResponse, ApiError> {
    let video = &state.config.video;
    let (Some(url), Some(api_key), Some(secret)) = (&video.url, &video.api_key, &video.api_secret)
    else {
        return Err(ApiError::VideoUnconfigured);
    };
    state.delivery.membership(&path, auth.device_id).await?;
    let room = crate::sfu::room(&state.keys, &path);
    let identity = crate::sfu::identity(&state.keys, &path, &auth.device_id);
    let now = crate::now();
    let expires_at = now + state.ttl(video.token_ttl_secs);
    let claims = LiveKitClaims {
        iss: api_key.clone(),
        sub: identity.clone(),
        nbf: now,
        exp: expires_at,
        video: VideoGrant {
            room: room.clone(),
            room_join: true,
            can_publish: true,
            can_subscribe: true,
            can_publish_data: false,
        },
    };
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(ApiError::Signing)?;
    Ok(HttpResponse::Ok().json(CallAccess {
        url: url.clone(),
        room,
        identity,
        token,
        expires_at,
    }))
}
