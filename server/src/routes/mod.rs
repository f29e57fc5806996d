//! HTTP handlers, one module per area, and the route table over them.
//!
//! Each handler carries its OpenAPI description (`#[utoipa::path]`): its
//! method, path, parameters and every answer. The table below names each
//! handler once; the server's routes, the OpenAPI document and the `Allow`
//! header of a 405 are all read from those descriptions, so they cannot
//! disagree. Handlers are thin: they parse, call the delivery core or
//! storage, and answer. No handler module imports another.

pub mod circles;
pub mod devices;
pub mod health;
pub mod invites;
pub mod key_packages;
pub mod logins;
pub mod ops;
pub mod push;
pub mod snapshots;
pub mod stream;
pub mod sync;
pub mod video;

use crate::error::ApiError;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, ResponseError, Route, web};
use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Instant;
use tracing::Instrument as _;
use utoipa::OpenApi as _;
use utoipa::openapi::path::HttpMethod;

/// Names every handler once: from the list come [`Operations`] (their
/// OpenAPI descriptions) and [`operations`] (each one's method, path and
/// handler, read from the same description).
macro_rules! route_table {
    ($($module:ident :: $handler:ident),* $(,)?) => {
        /// Every operation's OpenAPI description.
        #[derive(Debug, utoipa::OpenApi)]
        #[openapi(paths($($module::$handler),*))]
        pub struct Operations;

        /// Every operation: its method and path from its description, and
        /// its handler.
        pub fn operations() -> Vec<Operation> {
            pastey::paste! {
                vec![$(Operation::of::<$module::[<__path_ $handler>]>(
                    || web::route().to($module::$handler)
                )),*]
            }
        }
    };
}

route_table! {
    health::healthz,
    health::readyz,
    ops::metrics,
    ops::openapi,
    logins::create_challenge,
    logins::register_device,
    logins::login,
    logins::refresh,
    logins::logout,
    devices::list_devices,
    devices::revoke_device,
    devices::create_link_token,
    devices::delete_account,
    devices::facilitator_status,
    devices::enrol_facilitator,
    key_packages::upload,
    key_packages::count,
    key_packages::claim,
    circles::create,
    circles::list,
    circles::get,
    circles::commit,
    circles::send,
    circles::read,
    circles::ack,
    circles::group_info,
    circles::welcomes,
    circles::delete_welcome,
    sync::sync,
    snapshots::put,
    snapshots::get,
    video::call,
    push::services,
    push::put,
    push::get,
    push::delete,
    invites::create,
    invites::list,
    invites::revoke,
    invites::redeem,
    invites::join_requests,
    invites::decline,
    stream::stream,
}

/// One operation of the API.
pub struct Operation {
    /// Its path pattern, as actix and OpenAPI both write it
    /// (`/v1/circles/{circle_id}`).
    pub path: String,
    /// Its methods (one, in practice).
    pub methods: Vec<HttpMethod>,
    route: fn() -> Route,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Operation {
    fn of<P: utoipa::Path>(route: fn() -> Route) -> Self {
        Self {
            path: P::path(),
            methods: P::methods(),
            route,
        }
    }
}

fn method(method: &HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// The whole API description: the operations and what is said of them all
/// (see [`crate::openapi`]). Served at `/v1/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::openapi::document(Operations::openapi())
}

/// The operations grouped by path, in the table's order.
fn by_path() -> Vec<(String, Vec<Operation>)> {
    let mut paths: Vec<(String, Vec<Operation>)> = Vec::new();
    for operation in operations() {
        match paths.iter_mut().find(|(path, _)| *path == operation.path) {
            Some((_, served)) => served.push(operation),
            None => paths.push((operation.path.clone(), vec![operation])),
        }
    }
    paths
}

/// Registers every operation; a known path with another method answers
/// 405 with `Allow`, anything else 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, served) in by_path() {
        let mut resource = web::resource(path).default_service(web::to(method_not_allowed));
        for operation in served {
            for m in &operation.methods {
                resource = resource.route((operation.route)().method(method(m)));
            }
        }
        cfg.service(resource);
    }
}

/// The answer for routes that do not exist.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// The answer for a known route with the wrong method, with the methods it
/// serves in `Allow` (RFC 9110 §15.5.6).
async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    static ALLOWED: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
        // In one order whatever the table's: GET, PUT, POST, DELETE, PATCH.
        const ORDER: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];
        by_path()
            .into_iter()
            .map(|(path, served)| {
                let mut methods: Vec<String> = served
                    .iter()
                    .flat_map(|o| o.methods.iter().map(|m| method(m).to_string()))
                    .collect();
                methods.sort_by_key(|m| ORDER.iter().position(|o| o == m));
                (path, methods.join(", "))
            })
            .collect()
    });
    let mut response = ApiError::MethodNotAllowed.error_response();
    let allowed = req
        .match_pattern()
        .and_then(|pattern| ALLOWED.get(&pattern))
        .and_then(|a| HeaderValue::from_str(a).ok());
    if let Some(allowed) = allowed {
        response.headers_mut().insert(header::ALLOW, allowed);
    }
    response
}

/// Middleware: one span per request named by route template, one log line
/// when it finishes, and the request counter and latency histogram.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().as_str().to_owned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let span = tracing::info_span!("request", method = %method, route = %route);
    let started = Instant::now();
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.as_response_error().status_code().as_u16(),
    };
    if let Some(state) = state {
        if status == 507 {
            state.room.note_full(crate::now());
        } else if (200..300).contains(&status) && method != "GET" && method != "HEAD" {
            state.room.note_written();
        }
    }
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("hearth_http_requests_total", &labels).increment(1);
    metrics::histogram!("hearth_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    result
}

/// A UUID path segment (an invite, join request or Welcome id), read only in
/// its one spelling: lowercase and hyphenated, as the server emits it.
#[derive(Debug, Clone, Copy)]
pub struct UuidSegment(pub uuid::Uuid);

impl<'de> serde::Deserialize<'de> for UuidSegment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        hearth_protocol::ids::uuid_text::deserialize(deserializer).map(Self)
    }
}
