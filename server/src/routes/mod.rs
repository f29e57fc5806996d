//! HTTP handlers, one module per area. Each handler carries its OpenAPI
//! description (`#[utoipa::path]`), including its error answers.

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
pub mod video;
