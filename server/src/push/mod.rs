//! Waking phones that sleep: each device may register one push target (Web
//! Push, APNs or FCM); when something is waiting for a device with no live
//! socket anywhere, the server queues one wake for it, and a sender task
//! hands it to the device's push service.
//!
//! What the push services learn is held to a minimum: every wake is the
//! same constant, content-free message; a device is woken at most once per
//! `wake_interval_secs`; every wake waits a random delay so the phones of
//! one circle are not woken in the same instant; optional decoy wakes go to
//! random devices. Targets are sealed in the database under a key from the
//! configuration ([`seal`]).
//!
//! The flow: handlers and the appender call [`Push::wake`] after their
//! commit; the queue task folds what arrives together, asks storage which
//! devices have a working target, leaves out those with a socket on this
//! node (the hub knows for certain), and queues a row per device (a device
//! with one queued keeps it: bursts coalesce). The sender task claims due
//! rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so with several nodes each
//! wake is sent once), sends, and records the outcome: sent, retry later
//! (honouring `Retry-After`, in seconds or as a date, backing off
//! otherwise), or gone (the target is marked dead and the device can read
//! why).
//!
//! Presence, for the other nodes: each node writes which devices have a
//! socket on it when sockets open and close, batched (a mass reconnect is a
//! few transactions, not one per socket), and renews a life row of its own
//! every third of `presence_ttl_secs`. Presence counts only while its node
//! is alive, so a node killed mid-flight stops counting within that time;
//! a restart is a new random node id. A wake that falls due while its
//! device looks connected is held until the vouching node must have renewed,
//! then dropped if it did (the socket was live all along) and sent if not:
//! a dead node's word delays a wake, never swallows it.

pub mod apns;
pub mod endpoint;
pub mod fcm;
mod jwt;
mod presence;
pub mod seal;
mod sender;
pub mod web_push;

use crate::config::PushConfig;
use crate::hub::Hub;
use crate::storage::{Storage, WakeFor, WakeOutcome};
use async_trait::async_trait;
use hearth_protocol::DeviceId;
use hearth_protocol::push::{
    AUTH_SECRET_LEN, P256DH_LEN, PushDeadReason, PushKind, PushServices, PushStatus, PushTarget,
};
use secrecy::ExposeSecret as _;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How long a node holds a claimed wake before another may take it.
const LEASE_SECS: i64 = 60;
/// Wakes claimed at once.
const CLAIM_AT_MOST: i64 = 32;
/// Tries before a wake is given up (the target stays).
const MAX_ATTEMPTS: i64 = 8;
/// The longest wait between tries.
const MAX_BACKOFF_SECS: i64 = 3600;
/// Sockets that open or close within this long share one presence write:
/// a node writes presence at most 1/PRESENCE_GATHER times a second however
/// many sockets arrive (a mass reconnect), and a socket waits this long at
/// most, plus the write, before it is ready.
const PRESENCE_GATHER: Duration = Duration::from_millis(25);
/// How long an opening socket waits, at most, for its presence to be
/// recorded before it goes on regardless.
const PRESENCE_WAIT: Duration = Duration::from_secs(2);
/// The sender looks at the queue at least this often (other nodes queue
/// wakes too).
const LOOK_AT_LEAST_EVERY_SECS: i64 = 15;

/// What a push service said about one wake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted.
    Sent,
    /// Try again later: after this long, if the service said.
    Retry(Option<Duration>),
    /// The target no longer exists.
    Gone(PushDeadReason),
    /// This wake cannot be sent (a bug or a misconfiguration); dropped.
    Failed(&'static str),
}

/// One push service.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Sends the wake to `target` at `now` (unix seconds).
    async fn wake(&self, target: &PushTarget, now: i64) -> Delivery;
}

/// Why a device's push target was not taken, or cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The server does not send pushes of this kind.
    #[error("this server does not send {} pushes", .0.as_str())]
    Unconfigured(PushKind),
    /// A Web Push endpoint the server will not call.
    #[error(transparent)]
    EndpointRefused(endpoint::EndpointError),
    /// A field of the target is malformed (the text says which and how).
    #[error("{0}")]
    Invalid(&'static str),
    /// The target could not be sealed, or a stored one does not open.
    #[error("a push target could not be sealed or opened")]
    Seal,
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

/// Why push could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A key does not parse.
    #[error("{0} does not parse as the key it should be")]
    Key(&'static str),
    /// A setting is missing or wrong.
    #[error("{0}")]
    Setting(&'static str),
    /// A key file could not be read.
    #[error("cannot read {0}: {1}")]
    File(&'static str, #[source] std::io::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The target key is missing or wrong.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
}

/// The HTTP client every transport starts from: never follows a redirect,
/// and gives up on a push service that hangs.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
}

/// What an answer that says nothing transport-specific means: 2xx sent; 429
/// and 5xx again when the service says (`Retry-After`); anything else again
/// after the back-off.
pub fn delivery_of(status: u16, headers: &reqwest::header::HeaderMap) -> Delivery {
    match status {
        200..=299 => Delivery::Sent,
        429 | 500..=599 => Delivery::Retry(retry_after(headers)),
        _ => Delivery::Retry(None),
    }
}

/// `Retry-After` as a wait: delay seconds, or an HTTP date (RFC 9110
/// §10.2.3 allows both) counted from the clock now; a date already past is
/// no wait, a header that is neither is absent.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    retry_after_at(headers, std::time::SystemTime::now())
}

fn retry_after_at(
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Runs the task `start` makes until it ends; when it panics, logs it,
/// counts it (`hearth_push_task_restarts_total`) and starts a new one a
/// second later. Dropping this future stops the task.
pub async fn supervised<S, F>(name: &'static str, start: S)
where
    S: Fn() -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    /// Aborts the task when the supervisor is dropped (the server stops).
    struct Running(tokio::task::JoinHandle<()>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    loop {
        let mut running = Running(tokio::spawn(start()));
        match (&mut running.0).await {
            Ok(()) => return,
            Err(err) if err.is_panic() => {
                tracing::error!(task = name, "a push task panicked; starting it again");
                metrics::counter!("hearth_push_task_restarts_total", "task" => name).increment(1);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(_) => return,
        }
    }
}

/// Fresh keys for an operator (`hearth-server --generate-push-keys`).
#[derive(Debug)]
pub struct GeneratedKeys {
    /// `push.target_key`: 32 random bytes, unpadded base64url.
    pub target_key: String,
    /// `push.web_push.vapid_private_key`: a P-256 scalar.
    pub vapid_private_key: String,
    /// Its public half, as apps subscribe with it.
    pub vapid_public_key: String,
}

/// A fresh target key and VAPID key pair.
pub fn generate_keys() -> Result<GeneratedKeys, ProviderError> {
    let random = || {
        crate::crypto::random_bytes::<32>()
            .map_err(|_| ProviderError::Setting("no randomness for keys"))
    };
    let target_key = hearth_protocol::Base64Bytes::encode(&random()?);
    // A scalar of zero or past the group order is refused; draw again.
    for _ in 0..8 {
        let scalar = hearth_protocol::Base64Bytes::encode(&random()?);
        if let Ok(web_push) = web_push::WebPush::new(&scalar, "mailto:x@example.org", false) {
            return Ok(GeneratedKeys {
                target_key,
                vapid_public_key: web_push.public_key().to_owned(),
                vapid_private_key: scalar,
            });
        }
    }
    Err(ProviderError::Setting("could not draw a P-256 key"))
}

/// A setting that is either the secret itself or a path to a file with it.
fn inline_or_file(
    value: &str,
    name: &'static str,
    inline_starts: &str,
) -> Result<String, ProviderError> {
    if value.trim_start().starts_with(inline_starts) {
        return Ok(value.to_owned());
    }
    std::fs::read_to_string(value.trim()).map_err(|e| ProviderError::File(name, e))
}

/// The push service: transports, the sealer, timing, and the queues' ends.
pub struct Push {
    storage: Arc<dyn Storage>,
    sealer: seal::Sealer,
    web_push: Option<web_push::WebPush>,
    apns: Option<apns::Apns>,
    fcm: Option<fcm::Fcm>,
    default_apns_topic: bool,
    interval: i64,
    max_delay: u64,
    decoys_per_hour: u32,
    allow_private: bool,
    node: String,
    queue: mpsc::UnboundedSender<WakeFor>,
    queued: Notify,
    hub: Hub,
    /// How long this node's word on its sockets holds without renewal.
    presence_ttl: i64,
    /// Devices whose sockets on this node opened or closed since the last
    /// record, and the number the next record will have.
    presence_changed: Mutex<(HashSet<DeviceId>, u64)>,
    presence_dirty: Notify,
    /// The number of the last record written (or given up).
    presence_recorded: tokio::sync::watch::Sender<u64>,
    /// Wakes this node claimed and has not settled yet, with the lease each
    /// was claimed until: given back if the node stops first.
    claims: Mutex<std::collections::HashMap<DeviceId, i64>>,
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Push")
            .field("web_push", &self.web_push.is_some())
            .field("apns", &self.apns.is_some())
            .field("fcm", &self.fcm.is_some())
            .finish_non_exhaustive()
    }
}

/// The receiving end of [`Push::wake`], for [`Push::run`].
#[derive(Debug)]
pub struct WakeQueue(mpsc::UnboundedReceiver<WakeFor>);

impl Push {
    /// Push as configured: `None` when no transport is.
    pub fn from_config(
        config: &PushConfig,
        storage: Arc<dyn Storage>,
        hub: Hub,
    ) -> Result<Option<(Arc<Self>, WakeQueue)>, ProviderError> {
        if !config.enabled() {
            return Ok(None);
        }
        let key = config.target_key.as_ref().ok_or(ProviderError::Setting(
            "push.target_key must be set when a push transport is configured",
        ))?;
        let sealer = seal::Sealer::new(key.expose_secret())?;
        let web_push = match &config.web_push.vapid_private_key {
            Some(key) => Some(web_push::WebPush::new(
                key.expose_secret(),
                config
                    .web_push
                    .subject
                    .as_deref()
                    .ok_or(ProviderError::Setting(
                        "push.web_push.subject must be set with the VAPID key",
                    ))?,
                config.allow_private_endpoints,
            )?),
            None => None,
        };
        let apns_config = &config.apns;
        let apns = match &apns_config.key {
            Some(key) => {
                let pem = inline_or_file(key.expose_secret(), "push.apns.key", "-----BEGIN")?;
                let (Some(key_id), Some(team_id)) = (&apns_config.key_id, &apns_config.team_id)
                else {
                    return Err(ProviderError::Setting(
                        "push.apns needs key, key_id and team_id together",
                    ));
                };
                Some(apns::Apns::new(apns::ApnsSettings {
                    key_pem: &pem,
                    key_id,
                    team_id,
                    topic: apns_config.topic.as_deref(),
                    sandbox: apns_config.sandbox,
                    production_url: &apns_config.production_url,
                    sandbox_url: &apns_config.sandbox_url,
                    format: match apns_config.wake {
                        crate::config::ApnsWake::Alert => apns::ApnsWakeFormat::alert(
                            &apns_config.alert_body,
                            apns_config.alert_loc_key.as_deref(),
                        ),
                        crate::config::ApnsWake::Background => apns::ApnsWakeFormat::background(),
                    },
                })?)
            }
            None => None,
        };
        let fcm = match &config.fcm.service_account {
            Some(account) => {
                let json =
                    inline_or_file(account.expose_secret(), "push.fcm.service_account", "{")?;
                Some(fcm::Fcm::new(
                    &json,
                    config.fcm.project_id.as_deref(),
                    &config.fcm.base_url,
                )?)
            }
            None => None,
        };
        let node_bytes: [u8; 8] = crate::crypto::random_bytes()
            .map_err(|_| ProviderError::Setting("no randomness for a node id"))?;
        let (queue, receiver) = mpsc::unbounded_channel();
        let push = Self {
            storage,
            sealer,
            web_push,
            apns,
            fcm,
            default_apns_topic: apns_config.topic.is_some(),
            interval: i64::try_from(config.wake_interval_secs).unwrap_or(i64::MAX / 4),
            max_delay: config.max_delay_secs,
            decoys_per_hour: config.decoys_per_hour,
            allow_private: config.allow_private_endpoints,
            node: crate::crypto::hex(&node_bytes),
            queue,
            queued: Notify::new(),
            hub,
            presence_ttl: i64::try_from(config.presence_ttl_secs).unwrap_or(i64::MAX / 4),
            presence_changed: Mutex::new((HashSet::new(), 1)),
            presence_dirty: Notify::new(),
            presence_recorded: tokio::sync::watch::Sender::new(0),
            claims: Mutex::new(std::collections::HashMap::new()),
        };
        Ok(Some((Arc::new(push), WakeQueue(receiver))))
    }

    /// Which transports this server offers, and the VAPID key to subscribe
    /// with.
    pub fn services(&self) -> PushServices {
        PushServices {
            web_push_vapid_key: self.web_push.as_ref().map(|w| w.public_key().to_owned()),
            apns: self.apns.is_some(),
            fcm: self.fcm.is_some(),
        }
    }

    fn provider(&self, kind: PushKind) -> Option<&dyn Provider> {
        match kind {
            PushKind::WebPush => self.web_push.as_ref().map(|p| p as &dyn Provider),
            PushKind::Apns => self.apns.as_ref().map(|p| p as &dyn Provider),
            PushKind::Fcm => self.fcm.as_ref().map(|p| p as &dyn Provider),
        }
    }

    /// Checks and stores a device's target, replacing any earlier one.
    pub async fn register(&self, device: DeviceId, target: &PushTarget) -> Result<(), TargetError> {
        if self.provider(target.kind()).is_none() {
            return Err(TargetError::Unconfigured(target.kind()));
        }
        match target {
            PushTarget::WebPush {
                endpoint,
                p256dh,
                auth,
            } => {
                endpoint::check(endpoint, self.allow_private)
                    .map_err(TargetError::EndpointRefused)?;
                if p256dh.as_slice().len() != P256DH_LEN
                    || p256::PublicKey::from_sec1_bytes(p256dh.as_slice()).is_err()
                {
                    return Err(TargetError::Invalid(
                        "p256dh must be an uncompressed P-256 point (65 bytes)",
                    ));
                }
                if auth.as_slice().len() != AUTH_SECRET_LEN {
                    return Err(TargetError::Invalid("auth must be 16 bytes"));
                }
            }
            PushTarget::Apns { token, topic, .. } => {
                if !apns::valid_token(token) {
                    return Err(TargetError::Invalid(
                        "an APNs device token is 32 to 100 bytes in hexadecimal",
                    ));
                }
                if topic.is_none() && !self.default_apns_topic {
                    return Err(TargetError::Invalid(
                        "this server has no default APNs topic: name the app's bundle id",
                    ));
                }
                if topic
                    .as_ref()
                    .is_some_and(|t| t.is_empty() || t.len() > 255)
                {
                    return Err(TargetError::Invalid("the APNs topic is a bundle id"));
                }
            }
            PushTarget::Fcm { token } => {
                if token.is_empty() || token.len() > 4096 || token.chars().any(char::is_whitespace)
                {
                    return Err(TargetError::Invalid(
                        "an FCM registration token is 1 to 4096 characters without spaces",
                    ));
                }
            }
        }
        let sealed = self
            .sealer
            .seal(device, target)
            .map_err(|_| TargetError::Seal)?;
        self.storage
            .put_push_target(device, &sealed, crate::now())
            .await?;
        Ok(())
    }

    /// The device's target and its health.
    pub async fn status(&self, device: DeviceId) -> Result<Option<PushStatus>, TargetError> {
        let Some(record) = self.storage.push_target(device).await? else {
            return Ok(None);
        };
        let target = self.sealer.open(device, &record.sealed).map_err(|err| {
            tracing::error!(error = %err, "a push target does not open");
            TargetError::Seal
        })?;
        Ok(Some(PushStatus {
            kind: target.kind(),
            registered_at: record.registered_at,
            working: record.dead_at.is_none(),
            last_wake_at: record.last_wake_at,
            dead_since: record.dead_at,
            dead_reason: record.dead_reason.as_deref().map(PushDeadReason::parse),
        }))
    }

    /// Something new waits for these devices: queue wakes for those without
    /// a live socket (after the caller's commit).
    pub fn wake(&self, wake: WakeFor) {
        let _ = self.queue.send(wake);
    }

    /// A socket of `device` opened on this node (the hub knows): returns
    /// once the other nodes can see it, so no node wakes a device whose
    /// socket is ready. Sockets opening together share one write.
    pub async fn socket_opened(&self, device: DeviceId) {
        let batch = self.presence_changed(device);
        let mut recorded = self.presence_recorded.subscribe();
        let waited = tokio::time::timeout(PRESENCE_WAIT, recorded.wait_for(|&n| n >= batch));
        if waited.await.is_err() {
            tracing::warn!("a socket's presence was not recorded in time");
        }
    }

    /// The socket of `device` closed on this node (the hub knows): recorded
    /// with the next batch, as the hub then says.
    pub fn socket_closed(&self, device: DeviceId) {
        self.presence_changed(device);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    fn saying(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[tokio::test]
    async fn a_task_that_panics_is_started_again_and_one_that_ends_is_not() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let starts = Arc::new(AtomicU32::new(0));
        let counted = starts.clone();
        tokio::time::timeout(
            Duration::from_secs(10),
            supervised("test", move || {
                let counted = counted.clone();
                async move {
                    // The first run panics (as an overflow would); the second
                    // ends normally.
                    if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                        panic!("a bug in a push task");
                    }
                }
            }),
        )
        .await
        .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let wait = |value: &str| retry_after_at(&saying(value), now);
        assert_eq!(wait("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:51:37 GMT"),
            Some(Duration::from_secs(120)),
            "the IMF-fixdate form"
        );
        assert_eq!(
            wait("Sunday, 06-Nov-94 08:50:37 GMT"),
            Some(Duration::from_secs(60)),
            "the obsolete RFC 850 form"
        );
        assert_eq!(
            wait("Sun Nov  6 08:49:47 1994"),
            Some(Duration::from_secs(10)),
            "asctime"
        );
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:00:00 GMT"),
            Some(Duration::ZERO),
            "past"
        );
        assert_eq!(wait("soon"), None);
        assert_eq!(wait("-5"), None);
        assert_eq!(retry_after_at(&HeaderMap::new(), now), None);
    }
}
