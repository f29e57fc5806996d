//! Web Push (RFC 8030) with an encrypted payload (RFC 8291, `aes128gcm`,
//! through `web-push-native`) and VAPID authentication (RFC 8292): the
//! transport of browsers and of UnifiedPush distributors.

use super::endpoint::{self, PublicResolver};
use super::jwt::es256;
use super::{Delivery, Provider, ProviderError, delivery_of};
use async_trait::async_trait;
use hearth_protocol::push::{PushDeadReason, PushTarget, WAKE_PAYLOAD};
use p256::ecdsa::SigningKey;
use serde::Serialize;
use std::sync::Arc;

/// How long a push service may hold a wake for an unreachable device.
const TTL_SECS: u64 = 24 * 3600;
/// VAPID tokens last this long (RFC 8292 allows at most 24 hours).
const VAPID_TTL_SECS: i64 = 12 * 3600;

/// The Web Push transport.
pub struct WebPush {
    key: SigningKey,
    public_key: String,
    subject: String,
    allow_private: bool,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPush").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct VapidClaims<'a> {
    aud: &'a str,
    exp: i64,
    sub: &'a str,
}

impl WebPush {
    /// The transport, from the VAPID private key (a P-256 scalar, 32 bytes
    /// unpadded base64url) and the contact subject.
    pub fn new(
        vapid_private_key: &str,
        subject: &str,
        allow_private: bool,
    ) -> Result<Self, ProviderError> {
        let bytes = hearth_protocol::Base64Bytes::decode(vapid_private_key.trim())
            .filter(|b| b.len() == 32)
            .ok_or(ProviderError::Key("push.web_push.vapid_private_key"))?;
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| ProviderError::Key("push.web_push.vapid_private_key"))?;
        if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
            return Err(ProviderError::Setting(
                "push.web_push.subject must be a mailto: or https: URL",
            ));
        }
        let point = key.verifying_key().to_encoded_point(false);
        let mut client = super::client_builder();
        if !allow_private {
            client = client.dns_resolver(Arc::new(PublicResolver));
        }
        Ok(Self {
            public_key: hearth_protocol::Base64Bytes::encode(point.as_bytes()),
            key,
            subject: subject.to_owned(),
            allow_private,
            client: client.build().map_err(ProviderError::Client)?,
        })
    }

    /// The VAPID public key apps subscribe with (`applicationServerKey`):
    /// an uncompressed P-256 point, unpadded base64url.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }
}

#[async_trait]
impl Provider for WebPush {
    async fn wake(&self, target: &PushTarget, now: i64) -> Delivery {
        let PushTarget::WebPush {
            endpoint,
            p256dh,
            auth,
        } = target
        else {
            return Delivery::Failed("not a Web Push target");
        };
        let Ok(url) = endpoint::check(endpoint, self.allow_private) else {
            return Delivery::Gone(PushDeadReason::BadToken);
        };
        let Ok(ua_public) = p256::PublicKey::from_sec1_bytes(p256dh.as_slice()) else {
            return Delivery::Gone(PushDeadReason::BadToken);
        };
        let Ok(auth) = <[u8; hearth_protocol::push::AUTH_SECRET_LEN]>::try_from(auth.as_slice())
        else {
            return Delivery::Gone(PushDeadReason::BadToken);
        };
        let ua_auth = web_push_native::Auth::from(auth);
        let Ok(body) = web_push_native::encrypt(WAKE_PAYLOAD.to_vec(), &ua_public, &ua_auth) else {
            return Delivery::Failed("could not encrypt the wake");
        };
        let audience = url.origin().ascii_serialization();
        let claims = VapidClaims {
            aud: &audience,
            exp: now + VAPID_TTL_SECS,
            sub: &self.subject,
        };
        let Ok(token) = es256(&self.key, None, &claims) else {
            return Delivery::Failed("could not sign the VAPID token");
        };
        let sent = self
            .client
            .post(url)
            .header("ttl", TTL_SECS)
            .header("urgency", "high")
            .header("content-encoding", "aes128gcm")
            .header("content-type", "application/octet-stream")
            .header(
                "authorization",
                format!("vapid t={token}, k={}", self.public_key),
            )
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(_) => return Delivery::Retry(None),
        };
        match response.status().as_u16() {
            404 | 410 => Delivery::Gone(PushDeadReason::Unregistered),
            status => delivery_of(status, response.headers()),
        }
    }
}
