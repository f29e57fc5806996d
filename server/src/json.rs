//! JSON request bodies: `Body<T>` is actix's `Json<T>` with two more rules —
//! the body must be a JSON object, and its integers must fit 64-bit signed
//! (the document's `int64`). serde reads a struct from an array of its
//! fields in order too, so without this `[]` or `["...","..."]` would pass
//! as a request (Schemathesis found `[]` accepted as an upload). The size
//! limit, the content type and their error answers stay actix's
//! (`JsonConfig`, `error::json_error`).

use crate::error::{ApiError, describe_serde};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;

/// Whether every number in the body fits what the document promises
/// (`int64`): larger ones would otherwise saturate on their way to the
/// database.
fn within_int64(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => n.as_i64().is_some() || n.is_f64(),
        serde_json::Value::Array(items) => items.iter().all(within_int64),
        serde_json::Value::Object(fields) => fields.values().all(within_int64),
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
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
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
