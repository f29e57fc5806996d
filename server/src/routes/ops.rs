//! Metrics and the API description.

use crate::state::AppState;
use actix_web::{HttpResponse, web};

/// Prometheus metrics: request counts and latencies by route template and
/// status, database errors by kind, batch sizes, push outcomes by reason,
/// and the push queue (read from the database at each scrape: its depth,
/// how many are due, and how late the latest is). No ids appear in any label.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let now = crate::now();
    match state.storage.wake_queue(now).await {
        #[allow(clippy::cast_precision_loss)] // counts and seconds, far below 2^52
        Ok(queue) => {
            metrics::gauge!("hearth_push_queue_depth").set(queue.queued as f64);
            metrics::gauge!("hearth_push_queue_due").set(queue.due as f64);
            let late = queue
                .oldest_due_at
                .map_or(0, |at| now.saturating_sub(at).max(0));
            metrics::gauge!("hearth_push_queue_oldest_due_seconds").set(late as f64);
        }
        Err(err) => tracing::warn!(error = %err, "could not read the push queue for metrics"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::metrics_handle().render())
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 description of the API", content_type = "application/json")))]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(super::document())
}
