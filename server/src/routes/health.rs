//! Liveness and readiness.

use crate::state::AppState;
use crate::storage::WakeQueue;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use hearth_protocol::health::HealthStatus;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = HealthStatus)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus::ok())
}

/// A due wake that has waited longer than this makes the push queue
/// `behind`.
const PUSH_BEHIND_SECS: i64 = 120;

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
    let push = match (&state.push, database) {
        (None, _) => "off",
        // Not read from a database that is away.
        (Some(_), "unreachable") => "unknown",
        (Some(_), _) => match state.storage.wake_queue(now).await {
            Ok(queue) => queue_state(&queue, now),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the push queue");
                "unknown"
            }
        },
    };
    let ready = database == "ok";
    let body = HealthStatus {
        status: if ready { "ok" } else { "unavailable" }.into(),
        database: Some(database.into()),
        push: Some(push.into()),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, crate::error::RETRY_UNAVAILABLE_SECS))
            .json(body)
    }
}

/// `behind` when a due wake has waited more than [`PUSH_BEHIND_SECS`].
fn queue_state(queue: &WakeQueue, now: i64) -> &'static str {
    if queue
        .oldest_due_at
        .is_some_and(|at| now.saturating_sub(at) > PUSH_BEHIND_SECS)
    {
        "behind"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_push_queue_is_behind_once_a_due_wake_waited_over_two_minutes() {
        let queue = |oldest_due_at| WakeQueue {
            queued: 3,
            due: 1,
            oldest_due_at,
        };
        assert_eq!(queue_state(&queue(None), 1_000), "ok");
        assert_eq!(queue_state(&queue(Some(1_000 - 120)), 1_000), "ok");
        assert_eq!(queue_state(&queue(Some(1_000 - 121)), 1_000), "behind");
    }
}
