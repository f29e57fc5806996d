//! Stand-ins for the push services, speaking their real protocols on
//! loopback and checking what they receive: Web Push (RFC 8030) with VAPID
//! (RFC 8292), APNs over HTTP/2 with an ES256 provider token, FCM HTTP v1
//! with an OAuth 2 bearer from a service-account JWT (RFC 7523) that the
//! stand-in's own token endpoint issued. Everything received is kept for the
//! tests to read; every rule broken is kept as a violation.
//!
//! Web Push payloads are decrypted with `http-ece` (Python, written
//! elsewhere), not with the code the server encrypts with.

use crate::{b64, hex, rand_bytes};
use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_protocol::Base64Bytes;
use hearth_protocol::push::PushTarget;
use hearth_server::config::Config;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The APNs topic the tests use.
pub const TOPIC: &str = "org.hearth.app";
/// The APNs key id and team id.
pub const APNS_KEY_ID: &str = "HEARTHKEY1";
/// The APNs team id.
pub const APNS_TEAM_ID: &str = "HEARTHTEAM";
/// The Firebase project.
pub const FCM_PROJECT: &str = "hearth-test";
const FCM_CLIENT_EMAIL: &str = "push@hearth-test.iam.gserviceaccount.com";

/// Which service a request was made to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// Web Push, to the subscription with this id.
    WebPush(String),
    /// APNs, to this device token.
    Apns(String),
    /// FCM, to this registration token.
    Fcm(String),
}

/// One request a stand-in received (token requests are not kept).
#[derive(Debug, Clone)]
pub struct Received {
    /// Where it went.
    pub service: Service,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The request line's path.
    pub path: String,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer a stand-in gives one target instead of success.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

/// The keys the server is configured with, so the stand-ins can check its
/// signatures.
#[derive(Debug)]
pub struct PushKeys {
    /// `push.target_key`.
    pub target_key: String,
    /// `push.web_push.vapid_private_key`.
    pub vapid_private: String,
    /// Its public half, as the server announces it.
    pub vapid_public: String,
    /// `push.apns.key` (PEM).
    pub apns_pem: String,
    apns_public: p256::PublicKey,
    /// The FCM service account's RSA key (PKCS#8 PEM) and its modulus (the
    /// exponent is 65537).
    fcm_private_pem: String,
    fcm_modulus: Vec<u8>,
}

impl PushKeys {
    /// Fresh keys. The RSA key comes from the `openssl` command.
    pub fn generate() -> Result<Self> {
        let vapid = p256::SecretKey::from_slice(&rand_bytes::<32>())?;
        let apns = p256::SecretKey::from_slice(&rand_bytes::<32>())?;
        let dir = tempfile::tempdir()?;
        let private = dir.path().join("fcm.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&private)
            .output()
            .context("running openssl to make the FCM service account's key")?;
        if !made.status.success() {
            bail!("openssl genpkey: {}", String::from_utf8_lossy(&made.stderr));
        }
        let modulus = std::process::Command::new("openssl")
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&private)
            .output()?;
        if !modulus.status.success() {
            bail!("openssl rsa: {}", String::from_utf8_lossy(&modulus.stderr));
        }
        let text = String::from_utf8(modulus.stdout)?;
        let hex_modulus = text
            .trim()
            .strip_prefix("Modulus=")
            .context("openssl printed no modulus")?;
        let fcm_modulus = (0..hex_modulus.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_modulus[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Self {
            target_key: b64(&rand_bytes::<32>()),
            vapid_private: b64(&vapid.to_bytes()),
            vapid_public: b64(vapid.public_key().to_encoded_point(false).as_bytes()),
            apns_pem: apns.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)?.to_string(),
            apns_public: apns.public_key(),
            fcm_private_pem: std::fs::read_to_string(&private)?,
            fcm_modulus,
        })
    }

    /// The service account JSON, its token endpoint on `receiver`.
    pub fn service_account(&self, receiver: &PushReceiver) -> String {
        json!({
            "type": "service_account",
            "project_id": FCM_PROJECT,
            "private_key_id": hex(&rand_bytes::<20>()),
            "private_key": self.fcm_private_pem,
            "client_email": FCM_CLIENT_EMAIL,
            "client_id": "1",
            "token_uri": receiver.url("/token"),
        })
        .to_string()
    }

    /// Turns every transport on in `config`, pointed at `receiver`: no
    /// random delay, `interval` seconds between one device's wakes.
    pub fn configure(&self, config: &mut Config, receiver: &PushReceiver, interval: u64) {
        let push = &mut config.push;
        push.target_key = Some(SecretString::from(self.target_key.clone()));
        push.wake_interval_secs = interval;
        push.max_delay_secs = 0;
        push.allow_private_endpoints = true;
        push.web_push.vapid_private_key = Some(SecretString::from(self.vapid_private.clone()));
        push.web_push.subject = Some("mailto:ops@hearth.example".into());
        push.apns.key = Some(SecretString::from(self.apns_pem.clone()));
        push.apns.key_id = Some(APNS_KEY_ID.into());
        push.apns.team_id = Some(APNS_TEAM_ID.into());
        push.apns.topic = Some(TOPIC.into());
        push.apns.production_url = receiver.url("");
        push.apns.sandbox_url = receiver.url("/sandbox");
        push.fcm.service_account = Some(SecretString::from(self.service_account(receiver)));
        push.fcm.base_url = receiver.url("");
    }
}

impl PushKeys {
    /// Web Push alone, pointed at the stand-ins, as environment settings for
    /// a server process: no random delay, `interval` seconds between one
    /// device's wakes.
    pub fn web_push_settings(&self, interval: u64) -> Vec<(String, String)> {
        [
            ("HEARTH_PUSH__TARGET_KEY", self.target_key.clone()),
            ("HEARTH_PUSH__WAKE_INTERVAL_SECS", interval.to_string()),
            ("HEARTH_PUSH__MAX_DELAY_SECS", "0".into()),
            ("HEARTH_PUSH__ALLOW_PRIVATE_ENDPOINTS", "true".into()),
            (
                "HEARTH_PUSH__WEB_PUSH__VAPID_PRIVATE_KEY",
                self.vapid_private.clone(),
            ),
            (
                "HEARTH_PUSH__WEB_PUSH__SUBJECT",
                "mailto:ops@hearth.example".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// A Web Push subscription held by a test "browser": its keys decrypt what
/// arrives.
#[derive(Debug)]
pub struct Subscriber {
    /// The subscription's id in the stand-in's URL.
    pub id: String,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Subscriber {
    /// A fresh subscription.
    pub fn new() -> Result<Self> {
        Ok(Self {
            id: hex(&rand_bytes::<12>()),
            secret: p256::SecretKey::from_slice(&rand_bytes::<32>())?,
            auth: rand_bytes(),
        })
    }

    /// The target to register, at the stand-in.
    pub fn target(&self, receiver: &PushReceiver) -> PushTarget {
        PushTarget::WebPush {
            endpoint: receiver.url(&format!("/wp/{}", self.id)),
            p256dh: Base64Bytes::from(
                self.secret
                    .public_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
            auth: Base64Bytes::from(self.auth.to_vec()),
        }
    }

    /// Decrypts a payload with `http-ece`; `None` when `TEST_CHECKER_PYTHON`
    /// is not set outside CI (the check is then skipped).
    pub async fn decrypt(&self, body: &[u8]) -> Result<Option<Vec<u8>>> {
        let Ok(python) = std::env::var("TEST_CHECKER_PYTHON") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                bail!("CI=true but TEST_CHECKER_PYTHON is not set (scripts/test installs it)");
            }
            eprintln!("SKIPPED decrypting with http-ece: run scripts/test, which installs it");
            return Ok(None);
        };
        let script = r#"
import sys, http_ece
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.derive_private_key(int(sys.argv[1], 16), ec.SECP256R1())
plain = http_ece.decrypt(bytes.fromhex(sys.argv[3]), private_key=key,
                         auth_secret=bytes.fromhex(sys.argv[2]), version="aes128gcm")
sys.stdout.write(plain.hex())
"#;
        let output = tokio::process::Command::new(python)
            .args([
                "-c",
                script,
                &hex(&self.secret.to_bytes()),
                &hex(&self.auth),
                &hex(body),
            ])
            .output()
            .await?;
        if !output.status.success() {
            bail!(
                "http-ece could not decrypt the wake: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = String::from_utf8(output.stdout)?;
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()?;
        Ok(Some(bytes))
    }
}

/// A fresh APNs device token (32 bytes, hex).
pub fn apns_token() -> String {
    hex(&rand_bytes::<32>())
}

/// A fresh FCM registration token.
pub fn fcm_token() -> String {
    format!("fcm-{}", b64(&rand_bytes::<48>()))
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    violations: Vec<String>,
    answers: HashMap<String, Answer>,
    bearers: HashSet<String>,
    token_requests: usize,
}

/// The stand-in: one loopback server for all three services (HTTP/1.1 and
/// HTTP/2 with prior knowledge).
pub struct PushReceiver {
    server: crate::loopback::Loopback,
    inbox: Arc<Mutex<Inbox>>,
}

impl std::fmt::Debug for PushReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushReceiver")
            .field("address", &self.server.address)
            .finish_non_exhaustive()
    }
}

struct Checker {
    inbox: Arc<Mutex<Inbox>>,
    vapid_public: String,
    apns_public: p256::PublicKey,
    fcm_public: DecodingKey,
    origin: String,
}

impl PushReceiver {
    /// Starts the stand-in, checking signatures against `keys`.
    pub async fn start(keys: &PushKeys) -> Result<Self> {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let server = crate::loopback::Loopback::serve(|address| {
            let checker = Arc::new(Checker {
                inbox: inbox.clone(),
                vapid_public: keys.vapid_public.clone(),
                apns_public: keys.apns_public,
                fcm_public: DecodingKey::from_rsa_raw_components(&keys.fcm_modulus, &[1, 0, 1]),
                origin: format!("http://{address}"),
            });
            move |request| {
                let checker = checker.clone();
                async move { checker.handle(request).await }
            }
        })
        .await?;
        Ok(Self { server, inbox })
    }

    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An absolute URL on the stand-in.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.address)
    }

    /// From now on, answer requests for `target` (a subscription id or a
    /// token) with this instead of success.
    pub fn answer(&self, target: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.inbox().answers.insert(
            target.to_owned(),
            Answer {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect(),
                body: body.to_owned(),
            },
        );
    }

    /// Every request received so far (token requests aside).
    pub fn received(&self) -> Vec<Received> {
        self.inbox().received.clone()
    }

    /// The requests received after the first `seen` (token requests aside),
    /// and how many there are in all now.
    pub fn received_since(&self, seen: usize) -> (Vec<Received>, usize) {
        let inbox = self.inbox();
        let all = inbox.received.len();
        (inbox.received[seen.min(all)..].to_vec(), all)
    }

    /// The requests for one target.
    pub fn received_by(&self, service: &Service) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| &r.service == service)
            .collect()
    }

    /// How many OAuth token requests arrived.
    pub fn token_requests(&self) -> usize {
        self.inbox().token_requests
    }

    /// Every rule a request broke.
    pub fn violations(&self) -> Vec<String> {
        self.inbox().violations.clone()
    }

    /// Waits until `service` has received `count` requests (at most
    /// `within`), and returns them.
    pub async fn wait_for(
        &self,
        service: &Service,
        count: usize,
        within: Duration,
    ) -> Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received_by(service);
            if got.len() >= count {
                return Ok(got);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{service:?} received {} of {count} wakes in {within:?} (violations: {:?})",
                    got.len(),
                    self.violations()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn reply(status: u16, headers: &[(String, String)], body: String) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

impl Checker {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let version = format!("{:?}", request.version());
        let path = request.uri().path().to_owned();
        let method = request.method().clone();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let body = match request.into_body().collect().await {
            Ok(body) => body.to_bytes().to_vec(),
            Err(_) => return reply(400, &[], String::new()),
        };
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        if method != hyper::Method::POST {
            return self.violation(format!("{method} {path}: push requests are POSTs"), 405);
        }
        if path == "/token" {
            return self.issue_token(&body);
        }
        let (service, problems) = if let Some(id) = path.strip_prefix("/wp/") {
            (
                Service::WebPush(id.to_owned()),
                self.check_web_push(&header),
            )
        } else if let Some(token) = path
            .strip_prefix("/3/device/")
            .or_else(|| path.strip_prefix("/sandbox/3/device/"))
        {
            let mut problems = self.check_apns(&header, &body);
            if version != "HTTP/2.0" {
                problems.push(format!("APNs needs HTTP/2, got {version}"));
            }
            (Service::Apns(token.to_owned()), problems)
        } else if path == format!("/v1/projects/{FCM_PROJECT}/messages:send") {
            let (token, problems) = self.check_fcm(&header, &body);
            (Service::Fcm(token), problems)
        } else {
            return self.violation(format!("POST to an unknown path {path}"), 404);
        };
        let key = match &service {
            Service::WebPush(k) | Service::Apns(k) | Service::Fcm(k) => k.clone(),
        };
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        inbox.received.push(Received {
            service,
            version,
            headers,
            body,
            path,
        });
        if !problems.is_empty() {
            inbox.violations.extend(problems);
            return reply(400, &[], String::new());
        }
        match inbox.answers.get(&key) {
            Some(answer) => reply(answer.status, &answer.headers, answer.body.clone()),
            None => reply(201, &[], String::new()),
        }
    }

    fn violation(&self, what: String, status: u16) -> Response<Full<Bytes>> {
        self.inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .violations
            .push(what);
        reply(status, &[], String::new())
    }

    /// RFC 8292: `vapid t=<JWT>, k=<key>`, ES256 under `k`, `k` the
    /// server's key, `aud` this origin, `exp` within a day, `sub` a contact.
    fn check_web_push(&self, header: &dyn Fn(&str) -> String) -> Vec<String> {
        let mut problems = Vec::new();
        if header("content-encoding") != "aes128gcm" {
            problems.push("Web Push: Content-Encoding is not aes128gcm".to_owned());
        }
        if header("ttl").parse::<u64>().is_err() {
            problems.push("Web Push: no TTL".to_owned());
        }
        let authorization = header("authorization");
        let Some(rest) = authorization.strip_prefix("vapid ") else {
            problems.push("Web Push: no VAPID authorization".to_owned());
            return problems;
        };
        let mut token = "";
        let mut key = "";
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(t) = part.strip_prefix("t=") {
                token = t;
            } else if let Some(k) = part.strip_prefix("k=") {
                key = k;
            }
        }
        if key != self.vapid_public {
            problems.push("Web Push: k is not the server's VAPID key".to_owned());
        }
        let Ok(point) = URL_SAFE_NO_PAD
            .decode(key)
            .map_err(|_| ())
            .and_then(|b| p256::PublicKey::from_sec1_bytes(&b).map_err(|_| ()))
        else {
            problems.push("Web Push: k is not a P-256 point".to_owned());
            return problems;
        };
        let encoded = point.to_encoded_point(false);
        let (Some(x), Some(y)) = (encoded.x(), encoded.y()) else {
            problems.push("Web Push: k has no coordinates".to_owned());
            return problems;
        };
        let Ok(decoding) = DecodingKey::from_ec_components(&b64(x), &b64(y)) else {
            problems.push("Web Push: k is unusable".to_owned());
            return problems;
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[&self.origin]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        match jsonwebtoken::decode::<Value>(token, &decoding, &validation) {
            Ok(data) => {
                let exp = data.claims["exp"].as_i64().unwrap_or(0);
                if exp > hearth_server::now() + 24 * 3600 {
                    problems.push("Web Push: VAPID exp more than 24 h ahead".to_owned());
                }
                let sub = data.claims["sub"].as_str().unwrap_or("");
                if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
                    problems.push("Web Push: VAPID sub is not a contact".to_owned());
                }
            }
            Err(err) => problems.push(format!("Web Push: VAPID token refused: {err}")),
        }
        problems
    }

    /// APNs: `bearer` ES256 token with our key id and team, iat fresh; the
    /// topic; and one of the two wakes: an alert (push type `alert`,
    /// priority 10, collapse id `hearth`, `mutable-content` and a placeholder
    /// `body` or `loc-key`, nothing else) or a background push (push type
    /// `background`, priority 5, `content-available` and nothing else).
    fn check_apns(&self, header: &dyn Fn(&str) -> String, body: &[u8]) -> Vec<String> {
        let mut problems = Vec::new();
        let authorization = header("authorization");
        let token = authorization.strip_prefix("bearer ").unwrap_or("");
        let encoded = self.apns_public.to_encoded_point(false);
        let decoding = match (encoded.x(), encoded.y()) {
            (Some(x), Some(y)) => DecodingKey::from_ec_components(&b64(x), &b64(y)).ok(),
            _ => None,
        };
        match decoding {
            Some(decoding) => {
                let mut validation = Validation::new(Algorithm::ES256);
                validation.set_required_spec_claims(&["iss", "iat"]);
                validation.validate_exp = false;
                validation.set_issuer(&[APNS_TEAM_ID]);
                match jsonwebtoken::decode_header(token) {
                    Ok(h) if h.kid.as_deref() == Some(APNS_KEY_ID) => {}
                    _ => problems.push("APNs: the provider token names another key".to_owned()),
                }
                match jsonwebtoken::decode::<Value>(token, &decoding, &validation) {
                    Ok(data) => {
                        let iat = data.claims["iat"].as_i64().unwrap_or(0);
                        if (hearth_server::now() - iat).abs() > 3600 {
                            problems.push("APNs: provider token older than an hour".to_owned());
                        }
                    }
                    Err(err) => problems.push(format!("APNs: provider token refused: {err}")),
                }
            }
            None => problems.push("APNs: no key to check with".to_owned()),
        }
        if header("apns-topic") != TOPIC {
            problems.push("APNs: wrong topic".to_owned());
        }
        let payload = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        match header("apns-push-type").as_str() {
            "background" => {
                if header("apns-priority") != "5" {
                    problems.push("APNs: background pushes go at priority 5".to_owned());
                }
                if payload != json!({"aps": {"content-available": 1}}) {
                    problems.push(format!("APNs: not the bare background wake: {payload}"));
                }
            }
            "alert" => {
                if header("apns-priority") != "10" {
                    problems.push("APNs: alert wakes go at priority 10".to_owned());
                }
                if header("apns-collapse-id") != "hearth" {
                    problems.push("APNs: alert wakes collapse into one".to_owned());
                }
                let alert = &payload["aps"]["alert"];
                let placeholder = alert
                    .as_object()
                    .filter(|a| a.len() == 1)
                    .and_then(|a| a.get("body").or_else(|| a.get("loc-key")))
                    .and_then(Value::as_str)
                    .is_some_and(|text| !text.is_empty());
                let expected = json!({"aps": {"alert": alert, "mutable-content": 1}});
                if !placeholder || payload != expected {
                    problems.push(format!("APNs: not the bare alert wake: {payload}"));
                }
            }
            other => problems.push(format!("APNs: push type {other:?}")),
        }
        problems
    }

    /// FCM: a bearer this stand-in issued; a data-only message with the one
    /// constant field, high priority, nothing else.
    fn check_fcm(&self, header: &dyn Fn(&str) -> String, body: &[u8]) -> (String, Vec<String>) {
        let mut problems = Vec::new();
        let authorization = header("authorization");
        let bearer = authorization.strip_prefix("Bearer ").unwrap_or("");
        if !self
            .inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bearers
            .contains(bearer)
        {
            problems.push("FCM: a bearer the token endpoint did not issue".to_owned());
        }
        let message: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let token = message["message"]["token"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let expected = json!({
            "message": {
                "token": token,
                "data": { "hearth": "wake" },
                "android": { "priority": "high" },
            }
        });
        if message != expected {
            problems.push(format!("FCM: message is not the bare wake: {message}"));
        }
        (token, problems)
    }

    fn check_assertion(&self, assertion: &str) -> Result<(), String> {
        let parts: Vec<&str> = assertion.split('.').collect();
        let [header, claims, signature] = parts[..] else {
            return Err("the assertion is not a JWT".into());
        };
        let unpad = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('='));
        let header: Value = serde_json::from_slice(&unpad(header).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        if header["alg"] != "RS256" {
            return Err("the assertion is not RS256".into());
        }
        let message = format!("{}.{}", parts[0], parts[1]);
        let signature = signature.trim_end_matches('=');
        match jsonwebtoken::crypto::verify(
            signature,
            message.as_bytes(),
            &self.fcm_public,
            Algorithm::RS256,
        ) {
            Ok(true) => {}
            _ => return Err("the assertion's signature does not verify".into()),
        }
        let claims: Value = serde_json::from_slice(&unpad(claims).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let now = hearth_server::now();
        if claims["iss"] != FCM_CLIENT_EMAIL {
            return Err("the assertion is not the service account's".into());
        }
        if claims["aud"] != format!("{}/token", self.origin) {
            return Err("the assertion is for another audience".into());
        }
        let exp = claims["exp"].as_i64().unwrap_or(0);
        if exp < now || exp > now + 3700 {
            return Err("the assertion's exp is not within the hour".into());
        }
        if !claims["scope"]
            .as_str()
            .is_some_and(|s| s.contains("firebase.messaging"))
        {
            return Err("the assertion lacks the messaging scope".into());
        }
        Ok(())
    }

    /// RFC 7523: an RS256 assertion by the service account for this
    /// endpoint and the messaging scope.
    fn issue_token(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut inbox = self.inbox.lock().unwrap_or_else(|p| p.into_inner());
        inbox.token_requests += 1;
        if form.get("grant_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        {
            inbox.violations.push("OAuth: wrong grant_type".to_owned());
            return reply(400, &[], "{}".into());
        }
        // gcp_auth pads its base64 (Google accepts that), so the assertion
        // is checked by hand: signature over the text as sent, then claims.
        let assertion = form.get("assertion").cloned().unwrap_or_default();
        if let Err(problem) = self.check_assertion(&assertion) {
            inbox.violations.push(format!("OAuth: {problem}"));
            return reply(400, &[], "{}".into());
        }
        let bearer = format!("ya29.{}", b64(&rand_bytes::<24>()));
        inbox.bearers.insert(bearer.clone());
        reply(
            200,
            &[("content-type".into(), "application/json".into())],
            json!({"access_token": bearer, "expires_in": 3600, "token_type": "Bearer"}).to_string(),
        )
    }
}
