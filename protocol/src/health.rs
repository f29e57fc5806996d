//! Liveness and readiness answers.

use serde::{Deserialize, Serialize};

/// The body of `GET /healthz` (`status` only) and `GET /readyz` (each part
/// too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    /// `"ok"` when healthy (ready to serve); `"unavailable"` when not.
    pub status: String,
    /// `/readyz`: `"ok"`; `"unreachable"` (it does not answer); or `"full"`
    /// (writes failed for a full disk in the last 30 seconds, and none
    /// succeeded since). Anything but `"ok"` makes the node unready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// `/readyz`: `"ok"`; `"off"` (no push transport configured);
    /// `"behind"` (a wake has waited more than two minutes past its time:
    /// the push services refuse or the sender is stuck); or `"unknown"`
    /// (the database did not say). Informational: a node whose push queue
    /// is behind still serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<String>,
}

impl HealthStatus {
    /// `{"status":"ok"}`.
    pub fn ok() -> Self {
        Self {
            status: "ok".into(),
            database: None,
            push: None,
        }
    }
}
