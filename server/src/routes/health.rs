//! Liveness and readiness.

use crate::state::AppState;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use hearth_protocol::health::HealthStatus;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = HealthStatus)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus::ok())
}

/// Whether this node can serve, and each part's state: the database
/// (`ok`, `unreachable`, `full`) and the push queue (`ok`, `off`, `behind`).
/// A database that is not `ok` makes it `503`.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses(
    (status = 200, description = "Ready to serve", body = HealthStatus),
    (status = 503, description = "The database does not answer, or its disk is full", body = HealthStatus)))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let now = crate::now();
    let database = match state.storage.ping().await {
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            "unreachable"
        }
        Ok(()) if state.room.full(now) => "full",
        Ok(()) => "ok",
    };
    let ready = database == "ok";
    let body = HealthStatus {
        status: if ready { "ok" } else { "unavailable" }.into(),
        database: Some(database.into()),
        push: None,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, crate::error::RETRY_UNAVAILABLE_SECS))
            .json(body)
    }
}
