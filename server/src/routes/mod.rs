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

/// A UUID path segment (an invite, join request or Welcome id), read only in
/// its one spelling: lowercase and hyphenated, as the server emits it.
#[derive(Debug, Clone, Copy)]
pub struct UuidSegment(pub uuid::Uuid);

impl<'de> serde::Deserialize<'de> for UuidSegment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        hearth_protocol::ids::uuid_text::deserialize(deserializer).map(Self)
    }
}
