//! Configuration: defaults, then an optional TOML file, then environment
//! variables (`HEARTH_...`, with `__` between section and key, and plain
//! `DATABASE_URL`). Every field has a default, so no configuration is needed.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything the server can be told.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// Directory for the SQLite database when no `database_url` is set.
    #[schema(value_type = String)]
    pub data_dir: PathBuf,
    /// `postgres://...` to use PostgreSQL instead of SQLite (`DATABASE_URL`
    /// works too).
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub database_url: Option<SecretString>,
    /// PostgreSQL pool size.
    pub database_max_connections: u32,
    /// HTTP worker threads; the number of cores when unset.
    pub workers: Option<usize>,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Seconds between sweeps of expired rows.
    pub sweep_interval_secs: u64,
    /// Logging.
    pub log: LogConfig,
    /// Tokens and challenges.
    pub auth: AuthConfig,
    /// Request size limits.
    pub limits: LimitsConfig,
    /// Rate limits.
    pub rate_limits: RateLimitsConfig,
    /// The delivery service: circles, KeyPackages, the log.
    pub delivery: DeliveryConfig,
    /// The video server (SFU) circles meet on.
    pub video: VideoConfig,
    /// Waking phones: Web Push, APNs, FCM.
    pub push: PushConfig,
    /// Who may open circles, and what each account may hold.
    pub accounts: AccountsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("hearth-data"),
            database_url: None,
            database_max_connections: 16,
            workers: None,
            shutdown_timeout_secs: 30,
            sweep_interval_secs: 60,
            log: LogConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            rate_limits: RateLimitsConfig::default(),
            delivery: DeliveryConfig::default(),
            video: VideoConfig::default(),
            push: PushConfig::default(),
            accounts: AccountsConfig::default(),
        }
    }
}

/// Who may open circles, and what each account may hold.
/// `HEARTH_ACCOUNTS__...`. Members join only by a facilitator's invite
/// either way.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// `anyone` (any registered account may open circles: a personal
    /// server) or `enrolled` (only accounts enrolled with a facilitator code
    /// from `hearth-server admin facilitator-code`: a practice's server).
    pub facilitators: FacilitatorPolicy,
    /// Hours a facilitator code stays valid.
    pub facilitator_code_ttl_hours: u64,
    /// Circles one account may facilitate at once.
    pub max_circles: u64,
    /// Devices one account may have (revoked ones do not count).
    pub max_devices: u64,
    /// Invites one account may have outstanding in the circles it
    /// facilitates (unexpired and not used up).
    pub max_invites: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            facilitators: FacilitatorPolicy::Anyone,
            facilitator_code_ttl_hours: 7 * 24,
            max_circles: 50,
            max_devices: 10,
            max_invites: 100,
        }
    }
}

/// Who may open circles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FacilitatorPolicy {
    /// Any registered account.
    #[default]
    Anyone,
    /// Only accounts the operator enrolled.
    Enrolled,
}

/// The video server (a LiveKit SFU) circles meet on. `HEARTH_VIDEO__...`.
/// Without `url`, `api_key` and `api_secret` the call endpoint answers 503
/// `video_unconfigured`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// The SFU's URL as clients reach it (`wss://...`).
    pub url: Option<String>,
    /// The SFU's server API (`https://...`), which the server asks to drop
    /// devices that left a circle from its room; default: `url` with
    /// `wss`/`ws` as `https`/`http`.
    pub api_url: Option<String>,
    /// The SFU's API key (the tokens' `iss`).
    pub api_key: Option<String>,
    /// The SFU's API secret, which signs the tokens (at least 32 bytes).
    /// Without `url`, `api_key` and this, calls answer 503
    /// `video_unconfigured`.
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub api_secret: Option<SecretString>,
    /// Seconds a call token lasts (default 300, at most 600).
    pub token_ttl_secs: u64,
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self {
            url: None,
            api_url: None,
            api_key: None,
            api_secret: None,
            token_ttl_secs: 300,
        }
    }
}

/// Waking phones. `HEARTH_PUSH__...`. Each transport is configured on its
/// own; a device registering a target of a kind that is not configured gets
/// 422 `push_unconfigured`. Any transport needs `target_key`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// 32 bytes, unpadded base64url: the AES-256-GCM key targets are sealed
    /// with in the database; needed by any transport. Keep it outside the
    /// database (and its backups).
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub target_key: Option<SecretString>,
    /// At most one wake per device per this many seconds.
    pub wake_interval_secs: u64,
    /// Each wake waits a random 0..=this many seconds, so one circle's phones
    /// are not woken in the same instant.
    pub max_delay_secs: u64,
    /// Decoy wakes per hour sent to random registered devices (0: none).
    pub decoys_per_hour: u32,
    /// How long a node's word that a device has a live socket on it holds
    /// without renewal (2 to 600; renewed every third of it). A wake that
    /// falls due while its device looks connected on another node waits up
    /// to this long to learn whether that node is still alive.
    pub presence_ttl_secs: u64,
    /// For tests only: Web Push endpoints may be `http` and on loopback or
    /// private addresses.
    pub allow_private_endpoints: bool,
    /// Web Push (RFC 8030/8291/8292), which UnifiedPush distributors speak.
    pub web_push: WebPushConfig,
    /// Apple Push Notification service, with token (.p8) authentication.
    pub apns: ApnsConfig,
    /// Firebase Cloud Messaging, HTTP v1.
    pub fcm: FcmConfig,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            target_key: None,
            wake_interval_secs: 30,
            max_delay_secs: 10,
            decoys_per_hour: 0,
            presence_ttl_secs: 15,
            allow_private_endpoints: false,
            web_push: WebPushConfig::default(),
            apns: ApnsConfig::default(),
            fcm: FcmConfig::default(),
        }
    }
}

impl PushConfig {
    /// Whether any transport is configured.
    pub fn enabled(&self) -> bool {
        self.web_push.vapid_private_key.is_some()
            || self.apns.key.is_some()
            || self.fcm.service_account.is_some()
    }
}

/// Web Push. `HEARTH_PUSH__WEB_PUSH__...`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WebPushConfig {
    /// The VAPID private key: a P-256 scalar, 32 bytes unpadded base64url;
    /// turns Web Push (and UnifiedPush) on. Its public half is what apps
    /// subscribe with (`GET /v1/push/services`).
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub vapid_private_key: Option<SecretString>,
    /// Who push services may contact about this server: `mailto:` or
    /// `https:`.
    pub subject: Option<String>,
}

/// APNs. `HEARTH_PUSH__APNS__...`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ApnsConfig {
    /// The token signing key (.p8): the PEM text, or a path to the file;
    /// turns APNs on.
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub key: Option<SecretString>,
    /// The key's id (10 characters, from Apple).
    pub key_id: Option<String>,
    /// The team id the key belongs to.
    pub team_id: Option<String>,
    /// The app's bundle id, for targets that name none.
    pub topic: Option<String>,
    /// Targets that name no environment are development (sandbox) tokens.
    pub sandbox: bool,
    /// APNs production base URL.
    pub production_url: String,
    /// APNs development base URL.
    pub sandbox_url: String,
    /// What a wake is (see [`ApnsWake`]).
    pub wake: ApnsWake,
    /// The placeholder text an alert wake shows when the extension cannot
    /// replace it: the same for every wake, and nothing of the circle.
    pub alert_body: String,
    /// Instead of `alert_body`, a localisation key of the app's strings
    /// (the alert's `loc-key`).
    pub alert_loc_key: Option<String>,
}

/// What an APNs wake is: `alert` (a placeholder notification with
/// `mutable-content`, priority 10, that the app's Notification Service
/// Extension replaces after decrypting) or `background`
/// (`content-available`, priority 5: iOS may throttle or drop it, and
/// delivers none to an app the user force-quit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApnsWake {
    /// A visible placeholder the extension replaces (`apns-push-type:
    /// alert`, `mutable-content`, priority 10).
    #[default]
    Alert,
    /// A silent background push (`apns-push-type: background`,
    /// `content-available`, priority 5).
    Background,
}

impl Default for ApnsConfig {
    fn default() -> Self {
        Self {
            key: None,
            key_id: None,
            team_id: None,
            topic: None,
            sandbox: false,
            production_url: "https://api.push.apple.com".into(),
            sandbox_url: "https://api.sandbox.push.apple.com".into(),
            wake: ApnsWake::Alert,
            alert_body: "New activity in your circle".into(),
            alert_loc_key: None,
        }
    }
}

/// FCM. `HEARTH_PUSH__FCM__...`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FcmConfig {
    /// The service account key: its JSON text, or a path to the file; turns
    /// FCM on.
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub service_account: Option<SecretString>,
    /// The Firebase project id (the service account's when unset).
    pub project_id: Option<String>,
    /// FCM's base URL.
    pub base_url: String,
}

impl Default for FcmConfig {
    fn default() -> Self {
        Self {
            service_account: None,
            project_id: None,
            base_url: "https://fcm.googleapis.com".into(),
        }
    }
}

/// The delivery service's limits. `HEARTH_DELIVERY__...`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Largest ciphertext of one message, commit, Welcome or GroupInfo, in
    /// bytes (larger ones get 413).
    pub max_ciphertext_bytes: usize,
    /// Members (besides facilitators) a new circle allows unless it asks for
    /// another number.
    pub default_max_members: u32,
    /// The most members a circle may ask for.
    pub max_members_bound: u32,
    /// Seconds log entries are kept unless the circle asks for less.
    pub default_retention_secs: u64,
    /// The longest retention a circle may ask for, in seconds.
    pub max_retention_secs: u64,
    /// KeyPackages per upload.
    pub key_packages_per_upload: usize,
    /// KeyPackages a device may have waiting.
    pub key_package_pool: u32,
    /// Devices per KeyPackage claim.
    pub claim_devices: usize,
    /// Entries per page when reading a log.
    pub page_size: u32,
    /// How many epochs behind the current one a message may still be sent in
    /// (default 0: the current epoch only; a message in an epoch the circle
    /// has left is readable by a device removed since and not by one added
    /// since). At most `hearth_protocol::circles::EPOCH_WINDOW` (5), the past
    /// epochs clients keep.
    pub epoch_window: u64,
    /// Messages a device may send: a bucket of `burst`, refilled at
    /// `per_minute`.
    pub send_rate: Bucket,
    /// KeyPackage claims and invite redemptions a device may make.
    pub claim_rate: Bucket,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_ciphertext_bytes: 64 * 1024,
            default_max_members: 12,
            max_members_bound: 50,
            default_retention_secs: 30 * 24 * 3600,
            max_retention_secs: 365 * 24 * 3600,
            key_packages_per_upload: 100,
            key_package_pool: 200,
            claim_devices: 50,
            page_size: 100,
            epoch_window: hearth_protocol::circles::DEFAULT_EPOCH_WINDOW,
            send_rate: Bucket {
                burst: 60,
                per_minute: 60,
            },
            claim_rate: Bucket {
                burst: 30,
                per_minute: 30,
            },
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Logging. `HEARTH_LOG__FORMAT`, `HEARTH_LOG__LEVEL`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `hearth_server=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

/// Tokens and challenges. `HEARTH_AUTH__...`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The `iss` claim of access tokens.
    pub issuer: String,
    /// The `aud` claim of access tokens.
    pub audience: String,
    /// Access token lifetime in seconds (at most 900).
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
    /// How long a challenge may be answered, in seconds.
    pub challenge_ttl_secs: u64,
    /// How long a link token may be redeemed, in seconds.
    pub link_token_ttl_secs: u64,
    /// Clock skew tolerated when checking `exp` and `iat`, in seconds.
    pub leeway_secs: u64,
    /// An Ed25519 seed (32 bytes, unpadded base64url) to sign access tokens
    /// with. When unset, the server generates one on first start and keeps it
    /// in the database, where every node finds it.
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub signing_key: Option<SecretString>,
    /// 32 bytes, unpadded base64url: wraps the signing keys stored in the
    /// database (AES-256-GCM), so a copy of the database alone cannot mint
    /// tokens. Every node needs the same. Keys stored before it was set are
    /// wrapped at the next start.
    #[serde(serialize_with = "redacted")]
    #[schema(value_type = Option<String>, default = json!(null))]
    pub key_wrapping_key: Option<SecretString>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "hearth".into(),
            audience: "hearth-api".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            challenge_ttl_secs: 120,
            link_token_ttl_secs: 600,
            leeway_secs: 30,
            signing_key: None,
            key_wrapping_key: None,
        }
    }
}

/// Request size and time limits. `HEARTH_LIMITS__...`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest JSON body accepted, in bytes (larger ones get 413).
    pub json_body_bytes: usize,
    /// Milliseconds a client has to send a request's whole head; slower
    /// clients (slowloris) get 408 and are disconnected.
    pub request_head_timeout_ms: u64,
    /// Seconds an idle keep-alive connection stays open.
    pub keep_alive_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            json_body_bytes: 256 * 1024,
            request_head_timeout_ms: 5000,
            keep_alive_secs: 5,
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Requests allowed at once.
    pub burst: u32,
    /// Requests added back per minute.
    pub per_minute: u32,
}

/// Rate limits on the unauthenticated endpoints (challenges, registration,
/// login, refresh). `HEARTH_RATE_LIMITS__...`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Challenges, registrations, logins and refreshes per client address.
    pub per_ip: Bucket,
    /// Logins per device.
    pub per_device: Bucket,
    /// Take the client address from `X-Forwarded-For` / `Forwarded`. Only
    /// behind a proxy that sets them; otherwise clients could choose their own
    /// bucket.
    pub trust_forwarded_for: bool,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            per_ip: Bucket {
                burst: 60,
                per_minute: 30,
            },
            per_device: Bucket {
                burst: 10,
                per_minute: 6,
            },
            trust_forwarded_for: false,
        }
    }
}

/// Secrets serialise as whether they are set, never as their value.
fn redacted<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some("<set>"),
        None => s.serialize_none(),
    }
}

/// One setting: its key (sections joined by `.`) and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// `delivery.send_rate.burst`.
    pub key: String,
    /// Its field's documentation, as one paragraph (for a field inside a
    /// small group such as a rate bucket, the group's first).
    pub meaning: String,
    /// Its default as written in a TOML file or a variable (`None`: unset).
    pub default: Option<String>,
}

/// Every setting, read from the documentation of the `Config` fields (their
/// OpenAPI schema carries it), in key order: the one place a setting's
/// meaning is written. `hearth-server --help` and the README's table are
/// made from it.
pub fn settings() -> Vec<Setting> {
    use utoipa::openapi::{RefOr, Schema};
    use utoipa::{PartialSchema as _, ToSchema as _};
    let mut components = Vec::new();
    Config::schemas(&mut components);
    let named: std::collections::HashMap<String, RefOr<Schema>> = components.into_iter().collect();
    fn text(doc: Option<&str>) -> String {
        doc.unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
    fn walk(
        schema: &RefOr<Schema>,
        key: &str,
        context: &str,
        named: &std::collections::HashMap<String, RefOr<Schema>>,
        out: &mut Vec<Setting>,
    ) {
        let (schema, doc) = match schema {
            RefOr::Ref(reference) => {
                let name = reference
                    .ref_location
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                match named.get(name) {
                    Some(found) => (found, text(Some(&reference.description))),
                    None => return,
                }
            }
            RefOr::T(_) => (schema, String::new()),
        };
        let RefOr::T(Schema::Object(object)) = schema else {
            return;
        };
        if object.properties.is_empty() {
            let meaning = text(object.description.as_deref());
            let meaning = if meaning.is_empty() { doc } else { meaning };
            out.push(Setting {
                key: key.to_owned(),
                meaning: if context.is_empty() {
                    meaning
                } else {
                    format!("{context} {meaning}")
                },
                default: None,
            });
            return;
        }
        // Sections (`auth`, `push.apns`) say nothing per setting; a small
        // group inside one (a rate bucket) says what its numbers are for.
        let depth = key.matches('.').count() + usize::from(!key.is_empty());
        let inner = if depth >= 2 { doc.as_str() } else { "" };
        for (name, property) in &object.properties {
            let child = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            walk(property, &child, inner, named, out);
        }
    }
    let mut out = Vec::new();
    walk(&Config::schema(), "", "", &named, &mut out);
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    for setting in &mut out {
        setting.default = setting
            .key
            .split('.')
            .try_fold(&defaults, |value, part| value.get(part))
            .and_then(|value| match value {
                serde_json::Value::Null => None,
                serde_json::Value::String(text) => Some(text.clone()),
                other => Some(other.to_string()),
            });
    }
    out
}

/// The environment variable of a setting: `HEARTH_` and the key in capitals,
/// sections joined by `__`.
pub fn env_var(key: &str) -> String {
    format!("HEARTH_{}", key.to_uppercase().replace('.', "__"))
}

/// The settings with their environment variables and defaults, for `--help`.
pub fn settings_help() -> String {
    let mut out = String::from("Settings (TOML key / environment variable / default: meaning):\n");
    for Setting {
        key,
        meaning,
        default,
    } in settings()
    {
        out.push_str(&format!(
            "  {key}\n      {} = {}: {meaning}\n",
            env_var(&key),
            default.as_deref().unwrap_or("unset")
        ));
    }
    out
}

/// The README's table of settings, made from [`settings`]: key,
/// environment variable, default, meaning.
pub fn settings_table() -> String {
    let mut out =
        String::from("| setting | environment | default | meaning |\n|---|---|---|---|\n");
    for Setting {
        key,
        meaning,
        default,
    } in settings()
    {
        out.push_str(&format!(
            "| `{key}` | `{}` | {} | {} |\n",
            env_var(&key),
            default.map_or_else(|| "unset".to_owned(), |d| format!("`{d}`")),
            meaning.replace('|', "\\|")
        ));
    }
    out
}

/// The range of every number a setting may hold, `(key, least, most)`:
/// out of range is refused at start with a sentence naming the setting (a
/// test holds that every numeric setting is here). Generous where only an
/// operator's mistake is excluded; tight where the arithmetic or the
/// protocol needs it.
pub const BOUNDS: &[(&str, u64, u64)] = &[
    ("database_max_connections", 1, 1_000),
    ("workers", 1, 1_024),
    ("shutdown_timeout_secs", 0, 3_600),
    ("sweep_interval_secs", 1, 86_400),
    ("auth.access_token_ttl_secs", 1, 900),
    ("auth.refresh_token_ttl_secs", 60, 31_536_000),
    ("auth.challenge_ttl_secs", 1, 3_600),
    ("auth.link_token_ttl_secs", 1, 86_400),
    ("auth.leeway_secs", 0, 300),
    ("limits.json_body_bytes", 1_024, 16_777_216),
    ("limits.request_head_timeout_ms", 1, 600_000),
    ("limits.keep_alive_secs", 0, 3_600),
    ("rate_limits.per_ip.burst", 1, 1_000_000),
    ("rate_limits.per_ip.per_minute", 0, 1_000_000),
    ("rate_limits.per_device.burst", 1, 1_000_000),
    ("rate_limits.per_device.per_minute", 0, 1_000_000),
    ("delivery.max_ciphertext_bytes", 1_024, 16_777_216),
    ("delivery.default_max_members", 1, 1_000),
    ("delivery.max_members_bound", 1, 1_000),
    ("delivery.default_retention_secs", 60, 315_360_000),
    ("delivery.max_retention_secs", 60, 315_360_000),
    ("delivery.key_packages_per_upload", 1, 1_000),
    ("delivery.key_package_pool", 1, 10_000),
    ("delivery.claim_devices", 1, 1_000),
    ("delivery.page_size", 1, 1_000),
    (
        "delivery.epoch_window",
        0,
        hearth_protocol::circles::EPOCH_WINDOW,
    ),
    ("delivery.send_rate.burst", 1, 1_000_000),
    ("delivery.send_rate.per_minute", 0, 1_000_000),
    ("delivery.claim_rate.burst", 1, 1_000_000),
    ("delivery.claim_rate.per_minute", 0, 1_000_000),
    ("video.token_ttl_secs", 1, 600),
    ("push.wake_interval_secs", 0, 86_400),
    ("push.max_delay_secs", 0, 3_600),
    ("push.decoys_per_hour", 0, 3_600),
    ("push.presence_ttl_secs", 2, 600),
    ("accounts.facilitator_code_ttl_hours", 1, 8_760),
    ("accounts.max_circles", 1, 100_000),
    ("accounts.max_devices", 1, 1_000),
    ("accounts.max_invites", 1, 100_000),
];

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an environment variable does not parse.
    #[error(transparent)]
    Parse(#[from] Box<figment::Error>),
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        // The defaults are the first layer, key by key, so a file or the
        // environment may set one field of a section (one half of a rate
        // bucket) and keep the others.
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .merge(Env::prefixed("HEARTH_").ignore(&["CONFIG"]).split("__"))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that types cannot express: every number against
    /// [`BOUNDS`], then the rules between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let values = serde_json::to_value(self)
            .map_err(|e| ConfigError::Invalid(format!("the configuration: {e}")))?;
        for (key, least, most) in BOUNDS {
            let path = format!("/{}", key.replace('.', "/"));
            let value = values.pointer(&path).filter(|v| !v.is_null());
            if let Some(value) = value
                && !value
                    .as_u64()
                    .is_some_and(|n| (*least..=*most).contains(&n))
            {
                return Err(ConfigError::Invalid(format!(
                    "{key} must be between {least} and {most} (it is {value})"
                )));
            }
        }
        let delivery = &self.delivery;
        if delivery.default_max_members > delivery.max_members_bound {
            return Err(ConfigError::Invalid(
                "delivery.default_max_members must be at most delivery.max_members_bound".into(),
            ));
        }
        if delivery.default_retention_secs > delivery.max_retention_secs {
            return Err(ConfigError::Invalid(
                "delivery.default_retention_secs must be at most delivery.max_retention_secs"
                    .into(),
            ));
        }
        let video = &self.video;
        let parts = [
            video.url.is_some(),
            video.api_key.is_some(),
            video.api_secret.is_some(),
        ];
        if parts.contains(&true) && parts.contains(&false) {
            return Err(ConfigError::Invalid(
                "video needs url, api_key and api_secret together".into(),
            ));
        }
        if video
            .api_secret
            .as_ref()
            .is_some_and(|s| s.expose_secret().len() < 32)
        {
            return Err(ConfigError::Invalid(
                "video.api_secret must be at least 32 bytes".into(),
            ));
        }
        if video
            .api_url
            .as_ref()
            .is_some_and(|u| !u.starts_with("https://") && !u.starts_with("http://"))
        {
            return Err(ConfigError::Invalid(
                "video.api_url must be an http:// or https:// URL".into(),
            ));
        }
        let apns = &self.push.apns;
        let placeholder = |text: &str| (1..=APNS_ALERT_MAX).contains(&text.chars().count());
        if !placeholder(&apns.alert_body) {
            return Err(ConfigError::Invalid(format!(
                "push.apns.alert_body must be 1 to {APNS_ALERT_MAX} characters"
            )));
        }
        if apns
            .alert_loc_key
            .as_deref()
            .is_some_and(|k| !placeholder(k))
        {
            return Err(ConfigError::Invalid(format!(
                "push.apns.alert_loc_key must be 1 to {APNS_ALERT_MAX} characters"
            )));
        }
        Ok(())
    }
}

/// The longest APNs placeholder text or localisation key, in characters.
const APNS_ALERT_MAX: usize = 200;

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's own signature
mod tests;
