//! Liveness and readiness answers.

use serde::{Deserialize, Serialize};

/// The body of `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    /// `"ok"` when healthy.
    pub status: String,
}
