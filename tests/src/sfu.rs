//! A stand-in for LiveKit's server API (Twirp over HTTP, JSON): it keeps
//! who is in which room and answers `RoomService/RemoveParticipant` as
//! LiveKit does (200 `{}` when the participant was there, 404 `not_found`
//! when not), after checking what a LiveKit server checks: a POST with a
//! JSON body naming exactly a room and an identity, and a bearer token
//! signed HS256 with the API secret, issued by the API key, current, and
//! granting `roomAdmin` for that very room. Anything else is a violation,
//! answered 401 or 400 and recorded for the test to read.

use anyhow::Result;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The Twirp path of the one call Hearth makes.
pub const REMOVE_PARTICIPANT: &str = "/twirp/livekit.RoomService/RemoveParticipant";

/// One accepted `RemoveParticipant` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The room named.
    pub room: String,
    /// The identity named.
    pub identity: String,
    /// Whether the participant was in the room.
    pub was_there: bool,
    /// The admin token it came with.
    pub token: String,
}

#[derive(Default)]
struct Rooms {
    present: HashSet<(String, String)>,
    removals: Vec<Removal>,
    violations: Vec<String>,
}

/// The stand-in, on a loopback port.
pub struct LiveKitStandIn {
    server: crate::loopback::Loopback,
    rooms: Arc<Mutex<Rooms>>,
}

impl std::fmt::Debug for LiveKitStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveKitStandIn")
            .field("address", &self.server.address)
            .finish_non_exhaustive()
    }
}

struct Checker {
    rooms: Arc<Mutex<Rooms>>,
    api_key: String,
    secret: String,
}

impl LiveKitStandIn {
    /// Starts it for the API key and secret a server is configured with.
    pub async fn start(api_key: &str, secret: &str) -> Result<Self> {
        let rooms = Arc::new(Mutex::new(Rooms::default()));
        let checker = Arc::new(Checker {
            rooms: rooms.clone(),
            api_key: api_key.to_owned(),
            secret: secret.to_owned(),
        });
        let server = crate::loopback::Loopback::serve(|_| {
            move |request| {
                let checker = checker.clone();
                async move { checker.handle(request).await }
            }
        })
        .await?;
        Ok(Self { server, rooms })
    }

    /// Its URL as clients would be given it (`ws://...`); the server API is
    /// the same address over HTTP.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.server.address)
    }

    /// A participant joins the room (as a client with a token would).
    pub fn join(&self, room: &str, identity: &str) {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.present.insert((room.to_owned(), identity.to_owned()));
        }
    }

    /// Whether the participant is in the room.
    pub fn is_in(&self, room: &str, identity: &str) -> bool {
        self.rooms
            .lock()
            .is_ok_and(|r| r.present.contains(&(room.to_owned(), identity.to_owned())))
    }

    /// Every accepted removal so far.
    pub fn removals(&self) -> Vec<Removal> {
        self.rooms
            .lock()
            .map(|r| r.removals.clone())
            .unwrap_or_default()
    }

    /// What it refused, and why.
    pub fn violations(&self) -> Vec<String> {
        self.rooms
            .lock()
            .map(|r| r.violations.clone())
            .unwrap_or_default()
    }

    /// Waits until the participant is out of the room (at most `within`).
    pub async fn wait_until_out(&self, room: &str, identity: &str, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.is_in(room, identity) {
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        true
    }
}

fn reply(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(value) = "application/json".parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

impl Checker {
    fn refuse(&self, status: u16, code: &str, why: String) -> Response<Full<Bytes>> {
        if let Ok(mut rooms) = self.rooms.lock() {
            rooms.violations.push(why.clone());
        }
        reply(status, json!({ "code": code, "msg": why }))
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = request.uri().path().to_owned();
        if request.method() != hyper::Method::POST || path != REMOVE_PARTICIPANT {
            let why = format!(
                "{} {path}: not RoomService/RemoveParticipant",
                request.method()
            );
            return self.refuse(404, "bad_route", why);
        }
        let header = |name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let content_type = header(hyper::header::CONTENT_TYPE);
        let token = header(hyper::header::AUTHORIZATION)
            .strip_prefix("Bearer ")
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("application/json") {
            return self.refuse(400, "malformed", format!("content type {content_type:?}"));
        }
        let Ok(body) = request.into_body().collect().await else {
            return self.refuse(400, "malformed", "an unreadable body".into());
        };
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
            return self.refuse(400, "malformed", "a body that is not a JSON object".into());
        };
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let (Some(room), Some(identity)) = (
            body.get("room").and_then(Value::as_str),
            body.get("identity").and_then(Value::as_str),
        ) else {
            return self.refuse(400, "malformed", format!("fields {keys:?}"));
        };
        if keys != ["identity", "room"] {
            return self.refuse(400, "malformed", format!("fields {keys:?}"));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.api_key]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss"]);
        let claims = match jsonwebtoken::decode::<Value>(
            &token,
            &DecodingKey::from_secret(self.secret.as_bytes()),
            &validation,
        ) {
            Ok(data) => data.claims,
            Err(err) => return self.refuse(401, "unauthenticated", format!("token: {err}")),
        };
        let grant = &claims["video"];
        if grant["roomAdmin"] != true || grant["room"] != room {
            return self.refuse(
                401,
                "permission_denied",
                format!("the grant {grant} is not roomAdmin for the room named"),
            );
        }
        let Ok(mut rooms) = self.rooms.lock() else {
            return reply(500, json!({}));
        };
        let was_there = rooms
            .present
            .remove(&(room.to_owned(), identity.to_owned()));
        rooms.removals.push(Removal {
            room: room.to_owned(),
            identity: identity.to_owned(),
            was_there,
            token,
        });
        if was_there {
            reply(200, json!({}))
        } else {
            reply(
                404,
                json!({ "code": "not_found", "msg": "participant not found" }),
            )
        }
    }
}
