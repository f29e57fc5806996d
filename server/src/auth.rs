//! Authenticating requests: the `Authorization: Bearer` access token, checked
//! against the key ring and then against the database, so a revoked device or
//! an ended login stops working on its next request.

use crate::delivery::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::LoginId;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use hearth_protocol::{AccountId, DeviceId};

/// The device a request speaks for. Taking this as a handler argument makes
/// the route require a valid access token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated {
    /// The device.
    pub device_id: DeviceId,
    /// Its account.
    pub account_id: AccountId,
    /// The login the token descends from.
    pub login_id: LoginId,
}

impl Authenticated {
    /// The caller as the delivery core knows it.
    pub fn caller(&self) -> Caller {
        Caller {
            device: self.device_id,
            account: self.account_id,
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let (Some(state), Some(token)) = (state, token) else {
                return Err(ApiError::Unauthorized);
            };
            let storage = state.storage.as_ref();
            let (device_id, login_id) = state
                .keys
                .verify(&token, storage, crate::now())
                .await
                .ok_or(ApiError::Unauthorized)?;
            let live = match state.hub.logins().lookup(login_id, device_id) {
                Ok(live) => live,
                Err(ticket) => {
                    let live = storage
                        .live_login(login_id, device_id)
                        .await?
                        .ok_or(ApiError::Unauthorized)?;
                    state.hub.logins().remember(ticket, login_id, live);
                    live
                }
            };
            Ok(Self {
                device_id: live.device_id,
                account_id: live.account_id,
                login_id,
            })
        })
    }
}
