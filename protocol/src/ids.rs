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
                parse_uuid(text).map(Self)
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

/// Parses a UUID-shaped id in its one spelling: lowercase, hyphenated (the
/// form the server emits). Every UUID in a path or a body — devices,
/// accounts, invites, join requests, Welcomes, messages — is read with it.
pub fn parse_uuid(text: &str) -> Result<Uuid, IdParseError> {
    let uuid = Uuid::try_parse(text).map_err(|_| IdParseError::Uuid)?;
    if uuid.as_hyphenated().to_string() != text {
        return Err(IdParseError::Uuid);
    }
    Ok(uuid)
}

/// Serde for a UUID field in its one spelling (`#[serde(with = ...)]`).
pub mod uuid_text {
    use super::parse_uuid;
    use serde::{Deserialize as _, Deserializer, Serializer};
    use uuid::Uuid;

    /// Writes the lowercase hyphenated form.
    pub fn serialize<S: Serializer>(id: &Uuid, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id.as_hyphenated())
    }

    /// Reads only the lowercase hyphenated form.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse_uuid(&text).map_err(serde::de::Error::custom)
    }

    /// The same for a list.
    pub mod list {
        use super::parse_uuid;
        use serde::{Deserialize as _, Deserializer, Serializer};
        use uuid::Uuid;

        /// Writes each in the lowercase hyphenated form.
        pub fn serialize<S: Serializer>(ids: &[Uuid], serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(ids.iter().map(|id| id.as_hyphenated().to_string()))
        }

        /// Reads each only in the lowercase hyphenated form.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Uuid>, D::Error> {
            let texts = <Vec<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
            texts
                .iter()
                .map(|t| parse_uuid(t).map_err(serde::de::Error::custom))
                .collect()
        }
    }

    /// The same for an optional field.
    pub mod option {
        use super::parse_uuid;
        use serde::{Deserialize as _, Deserializer, Serializer};
        use uuid::Uuid;

        /// Writes the lowercase hyphenated form, or null.
        pub fn serialize<S: Serializer>(
            id: &Option<Uuid>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match id {
                Some(id) => serializer.collect_str(id.as_hyphenated()),
                None => serializer.serialize_none(),
            }
        }

        /// Reads only the lowercase hyphenated form, or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Uuid>, D::Error> {
            let text = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
            text.map(|t| parse_uuid(&t).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// A circle: the id of its MLS group, chosen by the client that created it
/// (16 to 64 bytes: at least 128 random bits, so that nobody can find a
/// circle by guessing — creating one with a taken id answers
/// `circle_exists`). On the wire and in paths it is unpadded base64url.
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
            // 16 to 64 bytes.
            .min_length(Some(22))
            .max_length(Some(86))
            .description(Some(
                "A circle: its MLS group id, 16 to 64 bytes as unpadded base64url",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CircleId {}

impl CircleId {
    /// Shortest group id accepted: 128 bits.
    pub const MIN_LEN: usize = 16;
    /// Longest group id accepted.
    pub const MAX_LEN: usize = 64;

    /// Wraps MLS group id bytes, checking the length.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, IdParseError> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            Ok(Self(bytes))
        } else {
            Err(IdParseError::Circle)
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
        let bytes = crate::Base64Bytes::decode(text).ok_or(IdParseError::Circle)?;
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

/// Text that is not a Hearth id of the kind expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdParseError {
    /// Not a lowercase hyphenated UUID.
    Uuid,
    /// Not 16 to 64 bytes of canonical unpadded base64url.
    Circle,
}

impl fmt::Display for IdParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Uuid => "not a Hearth id (expected a lowercase hyphenated UUID)",
            Self::Circle => {
                "not a circle id (expected 16 to 64 bytes as unpadded base64url, 22 to 86 characters)"
            }
        })
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
        assert!(parse_uuid("6F1C2A4E-8A3B-4C5D-9E0F-1A2B3C4D5E6F").is_err());
        assert!(
            "AAAAAAAAAAA".parse::<CircleId>().is_err(),
            "8 bytes are too few"
        );
        assert!("AAAAAAAAAAAAAAAAAAAAAA".parse::<CircleId>().is_ok());
        assert_eq!(format!("{id:?}"), "DeviceId(…)");
    }
}
