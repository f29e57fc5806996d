//! What the server tells the video server: who must leave a room. When a
//! device leaves a circle's roster (removed, left, revoked, its account
//! deleted), the server asks LiveKit to drop it from the circle's room
//! through LiveKit's server API (Twirp, `RoomService/RemoveParticipant`,
//! signed with the API key and secret as a token with `roomAdmin` for that
//! room only). A call token cannot be withdrawn, so the eviction is repeated
//! until every token the device could hold has expired: a device that
//! rejoins with an old token is dropped again within [`REPEAT_EVERY`].
//!
//! Evictions are best effort and kept in memory: a node that dies loses its
//! pending ones. The media keys are what keep a removed device out (it
//! cannot derive the next epoch's), the eviction what keeps it off the
//! video server. Nothing of it is logged but counts.

use crate::config::VideoConfig;
use crate::tokens::KeyRing;
use hearth_protocol::{CircleId, DeviceId};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often an eviction is repeated while an earlier token may still admit
/// the device.
pub const REPEAT_EVERY: Duration = Duration::from_secs(30);
/// Tries per eviction call before that call is given up.
const TRIES: u32 = 4;
/// Lifetime of the admin token of one call.
const ADMIN_TOKEN_SECS: i64 = 60;

/// One device to drop from one room: opaque names only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Eviction {
    room: String,
    identity: String,
}

/// LiveKit's video grant for the admin token: this room, admin, nothing
/// else.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdminGrant {
    room: String,
    room_admin: bool,
}

#[derive(Serialize)]
struct AdminClaims {
    iss: String,
    sub: String,
    nbf: i64,
    exp: i64,
    video: AdminGrant,
}

/// The sending end: routes hand it the devices that left a circle.
#[derive(Clone)]
pub struct Evictor {
    queue: mpsc::UnboundedSender<Eviction>,
    keys: std::sync::Arc<KeyRing>,
}

impl std::fmt::Debug for Evictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Evictor { .. }")
    }
}

/// The video server's room of a circle (opaque to it).
pub fn room(keys: &KeyRing, circle: &CircleId) -> String {
    keys.opaque_id(&[b"video room", circle.as_bytes()])
}

/// A device's identity in its circle's room (opaque to the video server).
pub fn identity(keys: &KeyRing, circle: &CircleId, device: &DeviceId) -> String {
    keys.opaque_id(&[b"video identity", circle.as_bytes(), device.as_bytes()])
}

/// Where LiveKit's server API is: `video.api_url`, or the clients' URL with
/// `wss`/`ws` turned into `https`/`http`.
pub fn api_url(video: &VideoConfig) -> Option<String> {
    if let Some(url) = &video.api_url {
        return Some(url.trim_end_matches('/').to_owned());
    }
    let url = video.url.as_deref()?.trim_end_matches('/');
    Some(if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    })
}

impl Evictor {
    /// An evictor for the configured video server and the task that sends
    /// its calls; `None` without a video server.
    pub fn start(video: &VideoConfig, keys: std::sync::Arc<KeyRing>) -> Option<Self> {
        let (Some(base), Some(api_key), Some(secret)) = (
            api_url(video),
            video.api_key.clone(),
            video.api_secret.clone(),
        ) else {
            return None;
        };
        let client = crate::push::client_builder().build().ok()?;
        let (queue, mut receiver) = mpsc::unbounded_channel::<Eviction>();
        let repeat_for = Duration::from_secs(video.token_ttl_secs);
        let sender = Sender {
            client,
            endpoint: format!("{base}/twirp/livekit.RoomService/RemoveParticipant"),
            api_key,
            secret,
        };
        let sender = std::sync::Arc::new(sender);
        tokio::spawn(async move {
            while let Some(eviction) = receiver.recv().await {
                let sender = sender.clone();
                tokio::spawn(async move { sender.evict_until(eviction, repeat_for).await });
            }
        });
        Some(Self { queue, keys })
    }

    /// The devices left the circle: drop them from its room, now and until
    /// their tokens have run out.
    pub fn evict(&self, circle: &CircleId, devices: &[DeviceId]) {
        let keys = &self.keys;
        let room = room(keys, circle);
        for device in devices {
            let _ = self.queue.send(Eviction {
                room: room.clone(),
                identity: identity(keys, circle, device),
            });
        }
    }
}

struct Sender {
    client: reqwest::Client,
    endpoint: String,
    api_key: String,
    secret: SecretString,
}

/// What one call came to.
enum Outcome {
    /// Dropped, or not in the room.
    Done,
    /// Worth another try.
    Again,
    /// Refused for good (a wrong key, say): no point repeating.
    Refused,
}

impl Sender {
    /// Evicts now, then every [`REPEAT_EVERY`] until `repeat_for` has passed
    /// (a token minted before the removal lasts at most that long).
    async fn evict_until(&self, eviction: Eviction, repeat_for: Duration) {
        let until = tokio::time::Instant::now() + repeat_for;
        loop {
            if matches!(self.evict_once(&eviction).await, Outcome::Refused) {
                return;
            }
            // The last call is the one made once every earlier token expired.
            let now = tokio::time::Instant::now();
            if now >= until {
                return;
            }
            tokio::time::sleep_until((now + REPEAT_EVERY).min(until)).await;
        }
    }

    /// One eviction call, tried a few times over transient failures.
    async fn evict_once(&self, eviction: &Eviction) -> Outcome {
        for attempt in 0..TRIES {
            let outcome = self.call(eviction).await;
            let label = match outcome {
                Outcome::Done => "done",
                Outcome::Again => "failed",
                Outcome::Refused => "refused",
            };
            metrics::counter!("hearth_video_evictions_total", "outcome" => label).increment(1);
            match outcome {
                Outcome::Again if attempt + 1 < TRIES => {
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
                Outcome::Again => {
                    tracing::warn!("the video server did not take an eviction; given up");
                    return Outcome::Again;
                }
                done => return done,
            }
        }
        Outcome::Again
    }

    async fn call(&self, eviction: &Eviction) -> Outcome {
        let now = crate::now();
        let claims = AdminClaims {
            iss: self.api_key.clone(),
            sub: "hearth-server".into(),
            nbf: now,
            exp: now + ADMIN_TOKEN_SECS,
            video: AdminGrant {
                room: eviction.room.clone(),
                room_admin: true,
            },
        };
        let key = EncodingKey::from_secret(self.secret.expose_secret().as_bytes());
        let Ok(token) = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key) else {
            return Outcome::Refused;
        };
        let answer = self
            .client
            .post(&self.endpoint)
            .bearer_auth(token)
            .json(eviction)
            .send()
            .await;
        let Ok(answer) = answer else {
            return Outcome::Again;
        };
        let status = answer.status().as_u16();
        match status {
            200..=299 => Outcome::Done,
            // Twirp's not_found: the device is not in the room (any more).
            404 => Outcome::Done,
            401 | 403 => {
                tracing::warn!(
                    status,
                    "the video server refused the eviction's credentials"
                );
                Outcome::Refused
            }
            _ => Outcome::Again,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_is_where_clients_connect_unless_configured() {
        let mut video = VideoConfig {
            url: Some("wss://sfu.example/".into()),
            ..VideoConfig::default()
        };
        assert_eq!(api_url(&video).as_deref(), Some("https://sfu.example"));
        video.url = Some("ws://127.0.0.1:7880".into());
        assert_eq!(api_url(&video).as_deref(), Some("http://127.0.0.1:7880"));
        video.api_url = Some("http://livekit:7880/".into());
        assert_eq!(api_url(&video).as_deref(), Some("http://livekit:7880"));
    }
}
