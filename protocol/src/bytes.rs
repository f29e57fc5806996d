//! Binary values on the wire: unpadded base64url strings.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that travel in JSON as an unpadded base64url string (RFC 4648 §5).
///
/// Deserialising rejects anything that is not canonical unpadded base64url, so a
/// handler only ever sees well-formed bytes.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Base64Bytes(pub Vec<u8>);

impl Base64Bytes {
    /// Encodes bytes as unpadded base64url text.
    pub fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes unpadded base64url text.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(text).ok()
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, owned.
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Base64Bytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for Base64Bytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl std::fmt::Debug for Base64Bytes {
    // Only the length: these values are keys, signatures or ciphertext and have
    // no business in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&Self::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::decode(&text)
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("expected unpadded base64url"))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Base64Bytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "base64url".into(),
            )))
            .pattern(Some(crate::ids::BASE64URL_PATTERN))
            .description(Some("Bytes as unpadded base64url (RFC 4648 §5)"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Base64Bytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_padding_and_foreign_alphabets() {
        let value = Base64Bytes(vec![0xfb, 0xff, 0x00]);
        let json = serde_json::to_string(&value).unwrap();
        assert_eq!(json, "\"-_8A\"");
        assert_eq!(serde_json::from_str::<Base64Bytes>(&json).unwrap(), value);
        assert!(serde_json::from_str::<Base64Bytes>("\"+/8A\"").is_err());
        assert!(serde_json::from_str::<Base64Bytes>("\"-w==\"").is_err());
        assert_eq!(format!("{value:?}"), "Base64Bytes(3 bytes)");
    }
}
