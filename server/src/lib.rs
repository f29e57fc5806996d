//! The Hearth server: a relay that authenticates devices and orders,
//! stores and delivers MLS ciphertext it cannot read.
//!
//! [`startup::Application`] builds everything from a [`config::Config`]; the
//! binary in `main.rs` only parses arguments and calls it.
#![deny(missing_docs)]

pub mod admin;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod error;
pub mod framing;
pub mod hub;
pub mod json;
pub mod logins;
pub mod mls;
pub mod openapi;
pub mod push;
pub mod rate_limit;
pub mod relay;
pub mod routes;
pub mod sfu;
pub mod startup;
pub mod state;
pub mod storage;
pub mod sweeper;
pub mod telemetry;
pub mod tokens;

/// Now, in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
