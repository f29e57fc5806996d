//! JSON request bodies: `Body<T>` is actix's `Json<T>` with one more rule —
//! the body must be a JSON object. serde reads a struct from an array of its
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
            serde_json::from_value(value)
                .map(Body)
                .map_err(|err| ApiError::BadRequest(describe_serde(&err)).into())
        })
    }
}
