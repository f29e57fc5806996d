//! Identifiers the server hands out. They are random (UUID version 4 from the
//! operating system's CSPRNG) and carry no meaning.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The sixteen bytes of the id (what signatures cover).
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }

        // Debug does not print the id: ids must never reach a log line unhashed.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(…)"))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                // Only the hyphenated lowercase form the server emits is accepted,
                // so every id has exactly one spelling.
                let uuid = Uuid::try_parse(text).map_err(|_| IdParseError)?;
                if uuid.as_hyphenated().to_string() != text {
                    return Err(IdParseError);
                }
                Ok(Self(uuid))
            }
        }
    };
}

random_id!(
    /// An account: the set of devices that belong to one person.
    AccountId
);
random_id!(
    /// A device: one installation of the app, holding one Ed25519 signature key.
    DeviceId
);

/// A circle: the id of its MLS group, chosen by the client that created it
/// (8 to 64 bytes). On the wire and in paths it is unpadded base64url.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CircleId(Vec<u8>);

/// Canonical unpadded base64url: whole groups, then a final group of three
/// or two characters whose unused bits are zero.
#[cfg(feature = "openapi")]
pub(crate) const BASE64URL_PATTERN: &str =
    "^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]|[A-Za-z0-9_-][AQgw])?$";

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CircleId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "base64url".into(),
            )))
            .pattern(Some(BASE64URL_PATTERN))
            // 8 to 64 bytes.
            .min_length(Some(11))
            .max_length(Some(86))
            .description(Some(
                "A circle: its MLS group id, 8 to 64 bytes as unpadded base64url",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CircleId {}

impl CircleId {
    /// Shortest group id accepted.
    pub const MIN_LEN: usize = 8;
    /// Longest group id accepted.
    pub const MAX_LEN: usize = 64;

    /// Wraps MLS group id bytes, checking the length.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, IdParseError> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(IdParseError)
        }
    }

    /// The MLS group id.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for CircleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::Base64Bytes::encode(&self.0))
    }
}

impl fmt::Debug for CircleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CircleId(…)")
    }
}

impl FromStr for CircleId {
    type Err = IdParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = crate::Base64Bytes::decode(text).ok_or(IdParseError)?;
        Self::from_bytes(bytes)
    }
}

impl Serialize for CircleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CircleId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Text that is not a Hearth id (a lowercase hyphenated UUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdParseError;

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a Hearth id (expected a lowercase hyphenated UUID)")
    }
}

impl std::error::Error for IdParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_canonical_spelling() {
        let id: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        assert_eq!(id.to_string(), "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f");
        assert!(
            "6F1C2A4E-8A3B-4C5D-9E0F-1A2B3C4D5E6F"
                .parse::<DeviceId>()
                .is_err()
        );
        assert!(
            "6f1c2a4e8a3b4c5d9e0f1a2b3c4d5e6f"
                .parse::<DeviceId>()
                .is_err()
        );
        assert!("not-an-id".parse::<DeviceId>().is_err());
        assert_eq!(format!("{id:?}"), "DeviceId(…)");
    }
}
