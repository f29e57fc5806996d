//! Logs and metrics, under the privacy rules: log lines carry route templates,
//! status codes and timings; ids appear only as [`redact`]ed salted hashes whose
//! salt changes every process start; no tokens, keys, bodies or addresses.

use crate::config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::fmt::Display;
use std::sync::OnceLock;
use tracing_subscriber::EnvFilter;

/// Installs the global `tracing` subscriber. A second call (tests start many
/// servers in one process) keeps the first.
pub fn init_logging(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

fn salt() -> &'static [u8; 16] {
    static SALT: OnceLock<[u8; 16]> = OnceLock::new();
    // Falling back to a fixed salt would make hashes linkable across restarts;
    // the clock is a poor but non-constant substitute if the OS RNG fails.
    SALT.get_or_init(|| {
        crate::crypto::random_bytes().unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            nanos.to_le_bytes()
        })
    })
}

/// A short salted hash of an id, for log lines: the same id gives the same
/// hash within one process run, and nothing links it to the id itself.
pub fn redact(id: &impl Display) -> String {
    let digest = crate::crypto::sha256(&[salt().as_slice(), id.to_string().as_bytes()].concat());
    crate::crypto::hex(&digest[..6])
}

/// The process-wide Prometheus recorder. Installed once; every server in the
/// process renders from it.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only if something else installed a recorder first.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_is_stable_within_a_run_and_hides_the_id() {
        let id = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f";
        assert_eq!(redact(&id), redact(&id));
        assert_ne!(redact(&id), redact(&"another"));
        assert!(!redact(&id).contains("6f1c"));
        assert_eq!(redact(&id).len(), 12);
    }
}
