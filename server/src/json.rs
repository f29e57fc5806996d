//! JSON request bodies: `Body<T>` is actix's `Json<T>` with two more rules —
//! the body must be a JSON object, and its integers must fit 64-bit signed
//! (the document's `int64`). serde reads a struct from an array of its
//! fields in order too, so without this `[]` or `["...","..."]` would pass
//! as a request (Schemathesis found `[]` accepted as an upload). And a key
//! may appear only once in an object, at any depth: `serde_json::Value`
//! keeps the last of duplicates, so a proxy or client reading the first
//! would see another request than the server (a parser differential). The
//! size limit, the content type and their error answers stay actix's
//! (`JsonConfig`, [`json_error`]).

use crate::error::ApiError;
use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::{DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// The message of a body with a key twice in one object;
/// [`describe_serde`] recognises it.
pub(crate) const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON value read with duplicate keys refused at every depth.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if fields.contains_key(&key) {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
            let Strict(value) = map.next_value()?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }
}

/// Whether every number in the body fits what the document promises
/// (`int64`): larger ones would otherwise saturate on their way to the
/// database.
fn within_int64(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_i64().is_some() || n.is_f64(),
        Value::Array(items) => items.iter().all(within_int64),
        Value::Object(fields) => fields.values().all(within_int64),
        _ => true,
    }
}

/// A JSON object body decoded into `T`.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T> Body<T> {
    /// The decoded body.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Body<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<Strict>::from_request(req, payload);
        Box::pin(async move {
            let Strict(value) = value.await?.into_inner();
            if !value.is_object() {
                return Err(ApiError::BadRequest("the body must be a JSON object".into()).into());
            }
            if !within_int64(&value) {
                return Err(ApiError::BadRequest(
                    "a number is out of range (integers are 64-bit signed)".into(),
                )
                .into());
            }
            serde_json::from_value(value)
                .map(Body)
                .map_err(|err| ApiError::BadRequest(describe_serde(&err)).into())
        })
    }
}

/// Turns actix's JSON extractor failures into [`ApiError`]s.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit: *limit },
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(serde) => ApiError::BadRequest(describe_serde(serde)),
        _ => ApiError::BadRequest("the request body could not be read".into()),
    };
    api.into()
}

/// Serde's messages can quote the offending input; keep only those that name
/// a field, and otherwise say where the problem is.
fn describe_serde(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if text.starts_with("missing field") || text.starts_with("unknown field") {
        return text
            .split(" at line")
            .next()
            .unwrap_or("invalid body")
            .split(", expected")
            .next()
            .unwrap_or("invalid body")
            .to_owned();
    }
    if text.starts_with(DUPLICATE_KEY) {
        return format!(
            "a key appears twice in one object (line {}, column {})",
            err.line(),
            err.column()
        );
    }
    match err.classify() {
        serde_json::error::Category::Data => format!(
            "a value has the wrong type or format (line {}, column {})",
            err.line(),
            err.column()
        ),
        _ => format!(
            "the body is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn strict(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<Strict>(text).map(|Strict(v)| v)
    }

    #[test]
    fn a_key_twice_is_refused_at_any_depth_and_nothing_else_changes() {
        for text in [
            r#"{"a":1,"b":[true,null,"x",-2,1.5],"c":{"d":{}}}"#,
            r#"{"a":{"k":1},"b":{"k":1}}"#,
            r#"[{"k":1},{"k":1}]"#,
            r#"18446744073709551615"#,
        ] {
            assert_eq!(
                strict(text).unwrap(),
                serde_json::from_str::<Value>(text).unwrap(),
                "{text}"
            );
        }
        for text in [
            r#"{"a":1,"a":1}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"{"x":{"a":1,"a":2}}"#,
            r#"[{"a":[{"b":1,"b":1}]}]"#,
        ] {
            let err = strict(text).unwrap_err();
            assert!(
                describe_serde(&err).contains("twice"),
                "{text}: {}",
                describe_serde(&err)
            );
        }
    }
}
