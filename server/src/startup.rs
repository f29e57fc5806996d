//! Building and running the application: storage, keys, the hub, push, the
//! delivery core and the HTTP server over the route table
//! ([`crate::routes::configure`]); then serving until told to stop.

use crate::config::Config;
use crate::delivery::{Delivery, Limits};
use crate::error;
use crate::hub::{Event, Hub};
use crate::push::{ProviderError, Push, WakeQueue};
use crate::rate_limit::RateLimiter;
use crate::routes;
use crate::sfu::Evictor;
use crate::state::AppState;
use crate::storage::{self, Storage, StorageError};
use crate::tokens::{KeyError, KeyRing};
use crate::{crypto, relay, sweeper, telemetry};
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

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
    /// The log's generation could not be read or begun.
    #[error("log generation: {0}")]
    Generation(#[from] crate::admin::AdminError),
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
        let generation = crate::admin::log_generation(storage.as_ref()).await?;
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
        let keys = Arc::new(keys);
        let delivery = Delivery::start(
            storage.clone(),
            hub.clone(),
            pusher.clone(),
            Evictor::start(&config.video, keys.clone()),
            Limits {
                max_ciphertext_bytes: config.delivery.max_ciphertext_bytes,
                page_size: config.delivery.page_size,
                epoch_window,
            },
            RateLimiter::new(config.delivery.send_rate),
            generation,
        );
        let state = web::Data::new(AppState::new(
            config,
            storage.clone(),
            keys,
            hub.clone(),
            pusher,
            delivery,
        ));
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
        let relay = tokio::spawn(relay::relay(heard, self.storage.clone(), self.hub.clone()));
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
            push.release_claims().await;
            push.forget_node().await;
        }
        self.storage.close().await;
        result
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
            .wrap(from_fn(routes::observe))
            .app_data(state.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(json_limit)
                    .error_handler(crate::json::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
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
