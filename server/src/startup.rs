//! Building and running the application: state, the route table, the server.

use crate::appender::Appender;
use crate::config::Config;
use crate::error::{self, ApiError};
use crate::hub::{Appended, Event, Hub, Notice};
use crate::push::{ProviderError, Push, WakeQueue};
use crate::rate_limit::{RateLimiter, retry_after_secs};
use crate::routes::{
    circles, devices, health, invites, key_packages, logins, ops, push, snapshots, stream, video,
};
use crate::storage::{self, LoginId, Storage, StorageError, WakeFor};
use crate::tokens::{KeyError, KeyRing};
use crate::{crypto, sweeper, telemetry};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpServer, Resource, web};
use hearth_protocol::auth::LoginTokens;
use hearth_protocol::{CircleId, DeviceId};
use secrecy::ExposeSecret;
use std::net::{IpAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The database.
    pub storage: Arc<dyn Storage>,
    /// JWT keys.
    pub keys: KeyRing,
    /// The configuration the server started with.
    pub config: Config,
    address_limiter: RateLimiter<IpAddr>,
    device_limiter: RateLimiter<DeviceId>,
    send_limiter: RateLimiter<DeviceId>,
    claim_limiter: RateLimiter<DeviceId>,
    /// Wake-ups for live sockets.
    pub hub: Hub,
    /// Group commit for application messages.
    pub appender: Appender,
    /// Waking phones, when a push transport is configured.
    pub push: Option<Arc<Push>>,
    /// Dropping devices that left a circle from its video room, when a
    /// video server is configured.
    pub evictor: Option<crate::sfu::Evictor>,
}

impl AppState {
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

    /// Wakes the sockets that care about `event`, on this node and (through
    /// the database) on every other.
    pub async fn publish(&self, event: Event) {
        if let Err(err) = self.storage.notify(&event.encode()).await {
            tracing::warn!(error = %err, "could not notify other nodes of an event");
        }
        self.hub.publish(event);
    }

    /// Queues wakes for whoever `wake` names that has no live socket (after
    /// the caller's commit; nothing without push).
    pub fn wake(&self, wake: WakeFor) {
        if let Some(push) = &self.push {
            push.wake(wake);
        }
    }

    /// The circles a device is in, when a video server may have to drop it
    /// from their rooms (none asked for without one).
    pub async fn rooms_of(&self, device: DeviceId) -> Result<Vec<CircleId>, StorageError> {
        if self.evictor.is_none() {
            return Ok(Vec::new());
        }
        let circles = self.storage.device_circles(device).await?;
        Ok(circles.into_iter().map(|c| c.id).collect())
    }

    /// The devices left the circle's roster: the video server drops them
    /// from its room (nothing without a video server).
    pub fn evict(&self, circle: &CircleId, devices: &[DeviceId]) {
        if let Some(evictor) = &self.evictor
            && !devices.is_empty()
        {
            evictor.evict(&self.keys, circle, devices);
        }
    }

    /// Applies the per-device send rate.
    pub fn limit_sends(&self, device_id: &DeviceId) -> Result<(), ApiError> {
        self.send_limiter.check(device_id).map_err(limited)
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

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The signing keys could not be loaded.
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The configured address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Randomness failed.
    #[error(transparent)]
    Random(#[from] crypto::RandomError),
    /// Push is configured wrongly.
    #[error("push: {0}")]
    Push(#[from] ProviderError),
}

/// How many events a live socket may have waiting before it is told it
/// lagged (and reads everything it follows from the database).
const SOCKET_MAILBOX: usize = 256;

/// A built server, listening, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    storage: Arc<dyn Storage>,
    hub: Hub,
    push: Option<(Arc<Push>, WakeQueue)>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens storage, loads keys and binds the listener.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let database_url = config
            .database_url
            .as_ref()
            .map(|u| u.expose_secret().to_owned());
        let storage = storage::connect(
            database_url.as_deref(),
            &config.data_dir,
            config.database_max_connections,
        )
        .await?;
        let keys = KeyRing::load(storage.as_ref(), &config.auth, crate::now()).await?;
        let listener = TcpListener::bind(&config.listen).map_err(|source| StartupError::Bind {
            address: config.listen.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: config.listen.clone(),
                source,
            })?
            .port();
        let _ = telemetry::metrics_handle();
        let hub = Hub::new(SOCKET_MAILBOX);
        let epoch_window = i64::try_from(config.delivery.epoch_window).unwrap_or(0);
        let push = Push::from_config(&config.push, storage.clone(), hub.clone())?;
        let pusher = push.as_ref().map(|(push, _)| push.clone());
        let state = web::Data::new(AppState {
            appender: Appender::start(storage.clone(), hub.clone(), epoch_window, pusher.clone()),
            push: pusher,
            evictor: crate::sfu::Evictor::start(&config.video),
            hub: hub.clone(),
            storage: storage.clone(),
            keys,
            address_limiter: RateLimiter::new(config.rate_limits.per_ip),
            device_limiter: RateLimiter::new(config.rate_limits.per_device),
            send_limiter: RateLimiter::new(config.delivery.send_rate),
            claim_limiter: RateLimiter::new(config.delivery.claim_rate),
            config,
        });
        let server = serve(listener, state)?;
        Ok(Self {
            port,
            server,
            storage,
            hub,
            push,
        })
    }

    /// The port the server listens on (useful when configured with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage the server uses (tests inspect it).
    pub fn storage(&self) -> Arc<dyn Storage> {
        self.storage.clone()
    }

    /// A handle to stop the server gracefully.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.server.handle(),
            hub: self.hub.clone(),
        }
    }

    /// Serves until SIGINT/SIGTERM or [`Stopper::stop`]: live sockets are told
    /// to reconnect elsewhere, in-flight requests finish, then the sweeper
    /// stops and the database pool closes.
    pub async fn run_until_stopped(self, sweep_every: Duration) -> std::io::Result<()> {
        let stopper = self.stopper();
        let signals = tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received; stopping gracefully");
            stopper.stop().await;
        });
        let sweeper = tokio::spawn(sweeper::run(self.storage.clone(), sweep_every));
        let pushing = self.push.as_ref().map(|(push, _)| push.clone());
        let pusher = self.push.map(|(push, queue)| tokio::spawn(push.run(queue)));
        let (notices, heard) = tokio::sync::mpsc::unbounded_channel();
        let relay = tokio::spawn(relay_notices(heard, self.storage.clone(), self.hub.clone()));
        let storage = self.storage.clone();
        let listener = tokio::spawn(async move {
            let deliver = Box::new(move |text: String| {
                let _ = notices.send(text);
            });
            if let Err(err) = storage.listen(deliver).await {
                tracing::error!(error = %err, "the cross-node event listener stopped");
            }
        });
        let result = self.server.await;
        signals.abort();
        sweeper.abort();
        listener.abort();
        relay.abort();
        if let Some(pusher) = pusher {
            pusher.abort();
        }
        if let Some(push) = pushing {
            push.forget_node().await;
        }
        self.storage.close().await;
        result
    }
}

/// The most entries one notice is read for on the sockets' behalf.
const RELAYED_AT_MOST: i64 = 512;

/// Passes what other nodes say to this node's sockets. Messages appended
/// elsewhere are read here once, for every socket that follows their circle,
/// and go out as frames; if that read fails, the sockets read for
/// themselves.
async fn relay_notices(
    mut heard: tokio::sync::mpsc::UnboundedReceiver<String>,
    storage: Arc<dyn Storage>,
    hub: Hub,
) {
    while let Some(text) = heard.recv().await {
        match Notice::parse(&text) {
            Some(Notice::Event(event)) => hub.publish(event),
            Some(Notice::Missed) => hub.missed_notices(),
            Some(Notice::Appended {
                circle,
                first,
                last,
            }) => {
                if !hub.followed(&circle) {
                    continue;
                }
                let count = last.saturating_sub(first).saturating_add(1);
                // A batch appends at most a few hundred; anything larger is
                // left to the sockets' own paged reads.
                if count > RELAYED_AT_MOST {
                    hub.publish(Event::Circle(circle));
                    continue;
                }
                match storage.log_entries(&circle, first - 1, count).await {
                    Ok(records) => {
                        let complete = i64::try_from(records.len()).ok() == Some(count);
                        for record in records {
                            match Appended::new(circle.clone(), record.into_entry()) {
                                Ok(appended) => hub.publish(Event::Appended(Arc::new(appended))),
                                Err(_) => hub.publish(Event::Circle(circle.clone())),
                            }
                        }
                        // Something was already gone (or not yet there):
                        // let each socket look for itself.
                        if !complete {
                            hub.publish(Event::Circle(circle));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not read entries another node appended");
                        hub.publish(Event::Circle(circle));
                    }
                }
            }
            None => {}
        }
    }
}

fn serve(listener: TcpListener, state: web::Data<AppState>) -> Result<Server, StartupError> {
    let config = &state.config;
    let json_limit = config.limits.json_body_bytes;
    let shutdown = config.shutdown_timeout_secs;
    let head_timeout = Duration::from_millis(config.limits.request_head_timeout_ms);
    let keep_alive = Duration::from_secs(config.limits.keep_alive_secs);
    let workers = config.workers;
    let address = config.listen.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(telemetry::observe))
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(error::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .configure(routes)
            .default_service(web::to(error::not_found))
    })
    // Live frames go out at once: with Nagle's algorithm on, a small frame
    // waits for the client's delayed ACK (tens of milliseconds).
    .on_connect(|connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    // Slow clients (slowloris) get 408 and lose the connection; idle
    // keep-alive connections close.
    .client_request_timeout(head_timeout)
    .keep_alive(keep_alive)
    .shutdown_timeout(shutdown)
    // Signals are ours (see `run_until_stopped`), so sockets close first.
    .disable_signals();
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server
        .listen(listener)
        .map_err(|source| StartupError::Bind { address, source })?
        .run())
}

/// Stops a running [`Application`] gracefully.
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    hub: Hub,
}

impl std::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopper")
    }
}

impl Stopper {
    /// Closes live sockets, then stops accepting and lets in-flight requests
    /// finish; returns when the server has stopped.
    pub async fn stop(&self) {
        self.hub.publish(Event::Shutdown);
        self.handle.stop(true).await;
    }
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(error::method_not_allowed))
}

/// The route table.
fn routes(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, post, put};
    cfg.service(resource("/healthz").route(get().to(health::healthz)))
        .service(resource("/readyz").route(get().to(health::readyz)))
        .service(resource("/metrics").route(get().to(ops::metrics)))
        .service(
            web::scope("/v1")
                .service(resource("/openapi.json").route(get().to(ops::openapi)))
                .service(resource("/stream").route(get().to(stream::stream)))
                .service(resource("/challenges").route(post().to(logins::create_challenge)))
                .service(
                    resource("/devices")
                        .route(post().to(logins::register_device))
                        .route(get().to(devices::list_devices)),
                )
                .service(
                    resource("/devices/{device_id}").route(delete().to(devices::revoke_device)),
                )
                .service(
                    resource("/devices/current/push")
                        .route(put().to(push::put))
                        .route(get().to(push::get))
                        .route(delete().to(push::delete)),
                )
                .service(resource("/push/services").route(get().to(push::services)))
                .service(resource("/logins").route(post().to(logins::login)))
                .service(resource("/logins/refresh").route(post().to(logins::refresh)))
                .service(resource("/logins/current").route(delete().to(logins::logout)))
                .service(resource("/link-tokens").route(post().to(devices::create_link_token)))
                .service(resource("/account").route(delete().to(devices::delete_account)))
                .service(resource("/key-packages").route(post().to(key_packages::upload)))
                .service(resource("/key-packages/count").route(get().to(key_packages::count)))
                .service(resource("/key-packages/claim").route(post().to(key_packages::claim)))
                .service(
                    resource("/circles")
                        .route(post().to(circles::create))
                        .route(get().to(circles::list)),
                )
                .service(resource("/circles/{circle_id}").route(get().to(circles::get)))
                .service(resource("/circles/{circle_id}/commits").route(post().to(circles::commit)))
                .service(
                    resource("/circles/{circle_id}/messages")
                        .route(post().to(circles::send))
                        .route(get().to(circles::read)),
                )
                .service(resource("/circles/{circle_id}/ack").route(post().to(circles::ack)))
                .service(
                    resource("/circles/{circle_id}/group-info")
                        .route(get().to(circles::group_info)),
                )
                .service(resource("/circles/{circle_id}/call").route(post().to(video::call)))
                .service(
                    resource("/circles/{circle_id}/snapshot")
                        .route(get().to(snapshots::get))
                        .route(put().to(snapshots::put)),
                )
                .service(
                    resource("/circles/{circle_id}/invites")
                        .route(post().to(invites::create))
                        .route(get().to(invites::list)),
                )
                .service(
                    resource("/circles/{circle_id}/invites/{invite_id}")
                        .route(delete().to(invites::revoke)),
                )
                .service(resource("/invites/redeem").route(post().to(invites::redeem)))
                .service(
                    resource("/circles/{circle_id}/join-requests")
                        .route(get().to(invites::join_requests)),
                )
                .service(
                    resource("/circles/{circle_id}/join-requests/{join_request_id}")
                        .route(delete().to(invites::decline)),
                )
                .service(resource("/welcomes").route(get().to(circles::welcomes)))
                .service(
                    resource("/welcomes/{welcome_id}").route(delete().to(circles::delete_welcome)),
                ),
        );
}
