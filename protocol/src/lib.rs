//! Hearth's wire protocol: the JSON types of every request and response, the error
//! body with its stable codes, id newtypes, and the exact bytes a device signs.
//!
//! This crate does no I/O. The server and the client SDK both depend on it, so a
//! change here is a change to the protocol.
#![deny(missing_docs)]

pub mod auth;
pub mod bytes;
pub mod circles;
pub mod content;
pub mod error;
pub mod framing;
pub mod health;
pub mod ids;
pub mod invite;
pub mod key_packages;
#[cfg(feature = "mls")]
pub mod mls;
pub mod push;
pub mod schedule;
pub mod stream;
pub mod sync;
pub mod video;

pub use bytes::Base64Bytes;
pub use error::{ErrorBody, ErrorCode};
pub use ids::{AccountId, CircleId, DeviceId};
