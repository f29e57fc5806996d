//! What every handler can reach: the shared state the HTTP layer is built
//! on, and the per-address and per-device limits it applies.

use crate::config::Config;
use crate::delivery::Delivery;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::push::Push;
use crate::rate_limit::{RateLimiter, retry_after_secs};
use crate::storage::{LoginId, Storage};
use crate::tokens::KeyRing;
use actix_web::HttpRequest;
use hearth_protocol::auth::LoginTokens;
use hearth_protocol::{AccountId, DeviceId};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// JWT keys.
    pub keys: Arc<KeyRing>,
    /// The configuration the server started with.
    pub config: Config,
    address_limiter: RateLimiter<IpAddr>,
    device_limiter: RateLimiter<DeviceId>,
    claim_limiter: RateLimiter<DeviceId>,
    /// Wake-ups for live sockets.
    pub hub: Hub,
    /// Waking phones, when a push transport is configured.
    pub push: Option<Arc<Push>>,
    /// The rules of the log, and who hears of its changes.
    pub delivery: Delivery,
    /// Whether writes are failing for a full disk.
    pub room: Room,
}

/// What an account's quota counts ([`crate::config::AccountsConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Circles it facilitates.
    Circles,
    /// Its devices.
    Devices,
    /// Invites outstanding in its circles.
    Invites,
}

impl AppState {
    /// Refuses (`403 quota_exceeded`) when `account` already holds as many
    /// of `quota` as the configuration allows: the next would be one too
    /// many. Counted when asked, not reserved: two requests racing at the
    /// last place may both pass.
    pub async fn within_quota(&self, account: AccountId, quota: Quota) -> Result<(), ApiError> {
        let usage = self.storage.usage(account, crate::now()).await?;
        let accounts = &self.config.accounts;
        let (held, most, what) = match quota {
            Quota::Circles => (
                usage.circles,
                accounts.max_circles,
                "circles it facilitates",
            ),
            Quota::Devices => (usage.devices, accounts.max_devices, "devices"),
            Quota::Invites => (usage.invites, accounts.max_invites, "outstanding invites"),
        };
        if u64::try_from(held).unwrap_or(u64::MAX) >= most {
            return Err(ApiError::QuotaExceeded(format!(
                "this account has {held} {what}, as many as this server allows ({most})"
            )));
        }
        Ok(())
    }
}

/// How long `/readyz` reports a full disk after the last write that failed
/// for it (when no write has succeeded since). Bounded, so that a node
/// nobody writes to any more (a balancer took it out) comes back by itself
/// once room was made.
pub const FULL_REMEMBERED_SECS: i64 = 30;

/// What requests have shown of the database's room: when a write last
/// failed for a full disk (`507 storage_full`), forgotten at the next write
/// that succeeds.
#[derive(Debug, Default)]
pub struct Room {
    /// Unix seconds; 0 when no write failed since the last that succeeded.
    full_at: std::sync::atomic::AtomicI64,
}

impl Room {
    /// A write failed for a full disk at `now`.
    pub fn note_full(&self, now: i64) {
        self.full_at
            .store(now.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// A write succeeded. (Read first: every write passes here, and a
    /// store each time would bounce the line between the workers' cores.)
    pub fn note_written(&self) {
        if self.full_at.load(std::sync::atomic::Ordering::Relaxed) != 0 {
            self.full_at.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether the disk is full, as far as recent writes tell.
    pub fn full(&self, now: i64) -> bool {
        let at = self.full_at.load(std::sync::atomic::Ordering::Relaxed);
        at != 0 && now.saturating_sub(at) < FULL_REMEMBERED_SECS
    }
}

impl AppState {
    /// The state for `config`, over its storage, keys, hub, push and
    /// delivery core.
    pub fn new(
        config: Config,
        storage: Arc<dyn Storage>,
        keys: Arc<KeyRing>,
        hub: Hub,
        push: Option<Arc<Push>>,
        delivery: Delivery,
    ) -> Self {
        Self {
            address_limiter: RateLimiter::new(config.rate_limits.per_ip),
            device_limiter: RateLimiter::new(config.rate_limits.per_device),
            claim_limiter: RateLimiter::new(config.delivery.claim_rate),
            storage,
            keys,
            hub,
            push,
            delivery,
            config,
            room: Room::default(),
        }
    }

    /// Seconds as a signed offset for unix-second arithmetic.
    pub fn ttl(&self, secs: u64) -> i64 {
        i64::try_from(secs).unwrap_or(i64::MAX / 2)
    }

    /// Applies the per-address limit of the unauthenticated endpoints.
    pub fn limit_address(&self, req: &HttpRequest) -> Result<(), ApiError> {
        let address = if self.config.rate_limits.trust_forwarded_for {
            req.connection_info()
                .realip_remote_addr()
                .and_then(parse_address)
        } else {
            req.peer_addr().map(|a| a.ip())
        };
        let Some(address) = address else {
            return Ok(());
        };
        self.address_limiter.check(&address).map_err(limited)
    }

    /// Applies the per-device login limit.
    pub fn limit_device(&self, device_id: &DeviceId) -> Result<(), ApiError> {
        self.device_limiter.check(device_id).map_err(limited)
    }

    /// Applies the per-device KeyPackage claim rate.
    pub fn limit_claims(&self, device_id: &DeviceId) -> Result<(), ApiError> {
        self.claim_limiter.check(device_id).map_err(limited)
    }

    /// Signs an access token and packs it with a refresh token.
    pub fn tokens(
        &self,
        device_id: DeviceId,
        login_id: LoginId,
        refresh_token: String,
        now: i64,
    ) -> Result<LoginTokens, ApiError> {
        let access_token = self
            .keys
            .issue(device_id, login_id, now)
            .map_err(ApiError::Signing)?;
        Ok(LoginTokens {
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.keys.ttl_secs(),
            refresh_token,
            refresh_expires_in: self.config.auth.refresh_token_ttl_secs,
        })
    }
}

fn limited(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: retry_after_secs(wait),
    }
}

/// `realip_remote_addr` is an address with or without a port.
fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}
