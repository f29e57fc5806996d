//! Apple Push Notification service over HTTP/2 with token (.p8)
//! authentication. A wake is, by default, an alert with `mutable-content`
//! (priority 10, one collapse id) whose placeholder text the operator sets
//! and the app's Notification Service Extension replaces after fetching and
//! decrypting; or, by configuration, a background notification
//! (`content-available`, priority 5). Either is the same for every wake.
//!
//! Why not the `a2` crate: its endpoints are fixed to Apple's hosts and its
//! TLS to the public roots, so it cannot be pointed at a local stand-in; the
//! protocol is one POST, and the provider token is an ES256 JWT.

use super::jwt::es256;
use super::{Delivery, Provider, ProviderError, delivery_of};
use async_trait::async_trait;
use hearth_protocol::push::{ApnsEnvironment, PushDeadReason, PushTarget};
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey as _;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Apple accepts a provider token for an hour and refuses new ones more
/// often than every twenty minutes: one is used for forty.
const PROVIDER_TOKEN_SECS: i64 = 40 * 60;

/// The payload of a background wake.
pub const APNS_BACKGROUND_WAKE: &str = r#"{"aps":{"content-available":1}}"#;

/// The collapse id of every alert wake: a second wake replaces the first
/// notification instead of adding one.
pub const APNS_COLLAPSE_ID: &str = "hearth";

/// What every wake of this server carries: its body and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApnsWakeFormat {
    /// `apns-push-type`.
    pub push_type: &'static str,
    /// `apns-priority`.
    pub priority: &'static str,
    /// `apns-collapse-id`, for alerts.
    pub collapse_id: Option<&'static str>,
    /// The JSON payload.
    pub payload: String,
}

impl ApnsWakeFormat {
    /// The alert wake with a placeholder: `body`, or `loc_key` when given.
    pub fn alert(body: &str, loc_key: Option<&str>) -> Self {
        let alert = match loc_key {
            Some(key) => serde_json::json!({ "loc-key": key }),
            None => serde_json::json!({ "body": body }),
        };
        Self {
            push_type: "alert",
            priority: "10",
            collapse_id: Some(APNS_COLLAPSE_ID),
            payload: serde_json::json!({ "aps": { "alert": alert, "mutable-content": 1 } })
                .to_string(),
        }
    }

    /// The background wake.
    pub fn background() -> Self {
        Self {
            push_type: "background",
            priority: "5",
            collapse_id: None,
            payload: APNS_BACKGROUND_WAKE.to_owned(),
        }
    }
}

/// The APNs transport.
pub struct Apns {
    key: SigningKey,
    key_id: String,
    team_id: String,
    topic: Option<String>,
    sandbox_by_default: bool,
    production_url: reqwest::Url,
    sandbox_url: reqwest::Url,
    client: reqwest::Client,
    token: Mutex<Option<(String, i64)>>,
    format: ApnsWakeFormat,
}

impl std::fmt::Debug for Apns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apns").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ProviderClaims<'a> {
    iss: &'a str,
    iat: i64,
}

#[derive(Deserialize)]
struct ApnsError {
    reason: String,
}

/// The APNs settings, checked.
#[derive(Debug)]
pub struct ApnsSettings<'a> {
    /// The .p8 key's PEM text.
    pub key_pem: &'a str,
    /// Its key id.
    pub key_id: &'a str,
    /// Its team id.
    pub team_id: &'a str,
    /// The default topic.
    pub topic: Option<&'a str>,
    /// Whether targets without an environment are sandbox tokens.
    pub sandbox: bool,
    /// Base URLs.
    pub production_url: &'a str,
    /// Base URLs.
    pub sandbox_url: &'a str,
    /// What every wake carries.
    pub format: ApnsWakeFormat,
}

impl Apns {
    /// The transport.
    pub fn new(settings: ApnsSettings<'_>) -> Result<Self, ProviderError> {
        let key = SigningKey::from_pkcs8_pem(settings.key_pem)
            .map_err(|_| ProviderError::Key("push.apns.key"))?;
        let url =
            |text: &str, name| reqwest::Url::parse(text).map_err(|_| ProviderError::Setting(name));
        let client = super::client_builder()
            .http2_prior_knowledge()
            .build()
            .map_err(ProviderError::Client)?;
        Ok(Self {
            key,
            key_id: settings.key_id.to_owned(),
            team_id: settings.team_id.to_owned(),
            topic: settings.topic.map(str::to_owned),
            sandbox_by_default: settings.sandbox,
            production_url: url(
                settings.production_url,
                "push.apns.production_url is not a URL",
            )?,
            sandbox_url: url(settings.sandbox_url, "push.apns.sandbox_url is not a URL")?,
            client,
            token: Mutex::new(None),
            format: settings.format,
        })
    }

    fn provider_token(&self, now: i64, fresh: bool) -> Option<String> {
        let mut cached = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((token, issued)) = cached.as_ref()
            && !fresh
            && now - issued < PROVIDER_TOKEN_SECS
        {
            return Some(token.clone());
        }
        let claims = ProviderClaims {
            iss: &self.team_id,
            iat: now,
        };
        let token = es256(&self.key, Some(&self.key_id), &claims).ok()?;
        *cached = Some((token.clone(), now));
        Some(token)
    }
}

/// Whether a device token looks like one: hexadecimal, 32 to 100 bytes.
pub fn valid_token(token: &str) -> bool {
    (64..=200).contains(&token.len())
        && token.len().is_multiple_of(2)
        && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[async_trait]
impl Provider for Apns {
    async fn wake(&self, target: &PushTarget, now: i64) -> Delivery {
        let PushTarget::Apns {
            token,
            topic,
            environment,
        } = target
        else {
            return Delivery::Failed("not an APNs target");
        };
        let Some(topic) = topic.as_deref().or(self.topic.as_deref()) else {
            return Delivery::Failed("no APNs topic");
        };
        if !valid_token(token) {
            return Delivery::Gone(PushDeadReason::BadToken);
        }
        let sandbox = match environment {
            Some(ApnsEnvironment::Sandbox) => true,
            Some(ApnsEnvironment::Production) => false,
            None => self.sandbox_by_default,
        };
        let base = if sandbox {
            &self.sandbox_url
        } else {
            &self.production_url
        };
        let path = format!("{}/3/device/{token}", base.as_str().trim_end_matches('/'));
        let Ok(url) = reqwest::Url::parse(&path) else {
            return Delivery::Failed("bad APNs URL");
        };
        let Some(provider_token) = self.provider_token(now, false) else {
            return Delivery::Failed("could not sign the APNs provider token");
        };
        let mut request = self
            .client
            .post(url)
            .header("authorization", format!("bearer {provider_token}"))
            .header("apns-topic", topic)
            .header("apns-push-type", self.format.push_type)
            .header("apns-priority", self.format.priority)
            .header("content-type", "application/json");
        if let Some(collapse_id) = self.format.collapse_id {
            request = request.header("apns-collapse-id", collapse_id);
        }
        let sent = request.body(self.format.payload.clone()).send().await;
        let response = match sent {
            Ok(response) => response,
            Err(_) => return Delivery::Retry(None),
        };
        let status = response.status().as_u16();
        let answered = delivery_of(status, response.headers());
        if answered == Delivery::Sent {
            return answered;
        }
        let reason = response
            .json::<ApnsError>()
            .await
            .map(|e| e.reason)
            .unwrap_or_default();
        match (status, reason.as_str()) {
            (410, _) | (_, "Unregistered") => Delivery::Gone(PushDeadReason::Unregistered),
            (_, "BadDeviceToken") | (_, "DeviceTokenNotForTopic") => {
                Delivery::Gone(PushDeadReason::BadToken)
            }
            (403, "ExpiredProviderToken") | (403, "InvalidProviderToken") => {
                self.provider_token(now, true);
                Delivery::Retry(None)
            }
            _ => answered,
        }
    }
}
