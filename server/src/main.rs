//! `hearth-server`: parse arguments, load configuration, run.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use hearth_server::config::Config;
use hearth_server::startup::Application;
use hearth_server::telemetry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The Hearth relay server.
///
/// With no configuration at all it listens on 127.0.0.1:8080 and keeps its
/// data in SQLite under ./hearth-data/. Settings come from defaults, then the
/// optional --config TOML file, then environment variables. A section of the
/// TOML file maps to the double underscore: [log] level = "debug" is
/// HEARTH_LOG__LEVEL=debug. DATABASE_URL works as well as HEARTH_DATABASE_URL.
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment, after_help = hearth_server::config::settings_help())]
struct Args {
    /// A TOML configuration file.
    #[arg(long, env = "HEARTH_CONFIG")]
    config: Option<PathBuf>,
    /// Print a fresh push target key and VAPID key pair as environment
    /// settings, and exit.
    #[arg(long)]
    generate_push_keys: bool,
    /// An operator's command instead of serving.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Operator's commands, on the configured database.
    #[command(subcommand)]
    Admin(Admin),
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Write a consistent copy of the SQLite database to PATH while the
    /// server runs, marked as a backup: a server started on it (restored
    /// into a data directory as hearth.db) begins a new log generation by
    /// itself. On PostgreSQL, use pg_dump -Fc and `admin restored`.
    Backup {
        /// Where the copy goes (a new file).
        path: PathBuf,
    },
    /// After restoring the database by other means (sqlite3 .backup, a file
    /// copy, pg_restore): begin a new log generation, so that clients are
    /// told and no message number is given twice. Run it before starting
    /// any server on the restored database.
    Restored,
    /// Mint a one-time facilitator code (printed once; only its hash is
    /// kept) for someone to enrol as a facilitator with, when
    /// accounts.facilitators = "enrolled".
    FacilitatorCode,
    /// List the enrolled facilitators: opaque account ids and dates.
    Facilitators,
    /// End an account's enrolment: its circles stay, it opens no new ones.
    RevokeFacilitator {
        /// The account id (from `admin facilitators`).
        account: hearth_protocol::AccountId,
    },
    /// The instance's figures: accounts, devices, facilitators, circles,
    /// messages and bytes held.
    Figures,
}

/// One line on failure — what went wrong and why, without a backtrace (an
/// operator reads it, not a debugger) — and a failing exit status.
#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hearth-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if args.generate_push_keys {
        let keys = hearth_server::push::generate_keys().context("generating keys")?;
        println!("# Keep these outside the database and its backups.");
        println!("HEARTH_PUSH__TARGET_KEY={}", keys.target_key);
        println!(
            "HEARTH_PUSH__WEB_PUSH__VAPID_PRIVATE_KEY={}",
            keys.vapid_private_key
        );
        println!("# Apps subscribe with this VAPID public key (also at GET /v1/push/services):");
        println!("# {}", keys.vapid_public_key);
        return Ok(());
    }
    let config = Config::load(args.config.as_deref()).context("loading configuration")?;
    if let Some(Command::Admin(command)) = args.command {
        return admin(&config, command).await;
    }
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

async fn admin(config: &Config, command: Admin) -> anyhow::Result<()> {
    let storage = hearth_server::admin::open(config).await?;
    let done = run_admin(storage.as_ref(), config, command).await;
    storage.close().await;
    done
}

/// One operator's command, on the configured database.
async fn run_admin(
    storage: &dyn hearth_server::storage::Storage,
    config: &Config,
    command: Admin,
) -> anyhow::Result<()> {
    use hearth_server::admin;
    match command {
        Admin::Backup { path } => {
            let bytes = admin::backup(config, &path).await?;
            println!(
                "backed up to {} ({bytes} bytes). A server restored from it needs the same \
                 auth.key_wrapping_key and push.target_key: keep them, apart from the backup.",
                path.display()
            );
        }
        Admin::FacilitatorCode => {
            let ttl = config.accounts.facilitator_code_ttl_hours;
            let (code, expires_at) = admin::facilitator_code(storage, ttl).await?;
            println!("{code}");
            eprintln!(
                "a one-time facilitator code, valid until {} (unix {expires_at}): pass it on \
                 privately; the facilitator enrols with `hearth facilitator <code>`",
                when(expires_at)
            );
        }
        Admin::Facilitators => {
            for (account, since) in storage.facilitators().await? {
                println!("{account}  enrolled {}", when(since));
            }
        }
        Admin::RevokeFacilitator { account } => {
            if !storage.revoke_facilitator(account).await? {
                anyhow::bail!("that account is not an enrolled facilitator");
            }
            println!("enrolment ended; the account's circles stay");
        }
        Admin::Figures => {
            let f = storage.figures().await?;
            println!("accounts      {}", f.accounts);
            println!("devices       {}", f.devices);
            println!("facilitators  {}", f.facilitators);
            println!("circles       {}", f.circles);
            println!("messages held {}", f.messages);
            println!("bytes held    {}", f.bytes);
        }
        Admin::Restored => {
            let begun = admin::restored(storage).await?;
            println!(
                "a new log generation begins (restore {}); start the server now",
                begun.restores
            );
        }
    }
    Ok(())
}

/// A unix time as a UTC date and time.
fn when(unix: i64) -> String {
    jiff::Timestamp::from_second(unix).map_or_else(
        |_| unix.to_string(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}
