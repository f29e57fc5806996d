//! `hearth-server`: parse arguments, load configuration, run.

use anyhow::Context as _;
use clap::Parser;
use hearth_server::config::Config;
use hearth_server::startup::Application;
use hearth_server::telemetry;
use std::path::PathBuf;
use std::time::Duration;

/// The Hearth relay server.
///
/// With no configuration at all it listens on 127.0.0.1:8080 and keeps its
/// data in SQLite under ./hearth-data/. Settings come from defaults, then the
/// optional --config TOML file, then environment variables:
///
///   HEARTH_LISTEN                     address to listen on (127.0.0.1:8080)
///   HEARTH_DATA_DIR                   SQLite data directory (./hearth-data)
///   DATABASE_URL                      postgres://... to use PostgreSQL instead
///   HEARTH_DATABASE_MAX_CONNECTIONS   PostgreSQL pool size (16)
///   HEARTH_WORKERS                    HTTP worker threads (one per core)
///   HEARTH_LOG__FORMAT                pretty | json (pretty)
///   HEARTH_LOG__LEVEL                 a tracing filter (info)
///   HEARTH_AUTH__ISSUER / __AUDIENCE  JWT iss / aud (hearth / hearth-api)
///   HEARTH_AUTH__SIGNING_KEY          Ed25519 seed, base64url (generated and stored)
///   HEARTH_AUTH__ACCESS_TOKEN_TTL_SECS   (900, at most 900)
///   HEARTH_AUTH__REFRESH_TOKEN_TTL_SECS  (2592000)
///   HEARTH_LIMITS__JSON_BODY_BYTES    (262144)
///   HEARTH_RATE_LIMITS__PER_IP__BURST / __PER_MINUTE       (60 / 30)
///   HEARTH_RATE_LIMITS__PER_DEVICE__BURST / __PER_MINUTE   (10 / 6)
///   HEARTH_RATE_LIMITS__TRUST_FORWARDED_FOR   (false)
///   HEARTH_DELIVERY__MAX_CIPHERTEXT_BYTES      (65536)
///   HEARTH_DELIVERY__DEFAULT_MAX_MEMBERS       (12)
///   HEARTH_DELIVERY__DEFAULT_RETENTION_SECS    (2592000)
///   HEARTH_DELIVERY__SEND_RATE__BURST / __PER_MINUTE   (60 / 60)
///
/// A section of the TOML file maps to the double underscore: [log] level = "debug"
/// is HEARTH_LOG__LEVEL=debug. See README.md for the full table.
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// A TOML configuration file.
    #[arg(long, env = "HEARTH_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = Config::load(args.config.as_deref()).context("loading configuration")?;
    telemetry::init_logging(&config.log);
    let sweep_every = Duration::from_secs(config.sweep_interval_secs.max(1));
    let listen = config.listen.clone();
    let app = Application::build(config)
        .await
        .context("starting the server")?;
    tracing::info!(
        address = %listen,
        port = app.port(),
        database = app.storage().backend().as_str(),
        "hearth-server listening"
    );
    app.run_until_stopped(sweep_every).await?;
    tracing::info!("hearth-server stopped");
    Ok(())
}
