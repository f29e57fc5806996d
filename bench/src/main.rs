//! `hearth-bench`: how fast Hearth accepts and delivers messages, beside how
//! fast its own database commits durably on the same disk, measured in one
//! run.
//!
//! It starts the real server (in this process, on a fresh database, every
//! core working), sets up circles of twelve devices through the real API
//! (registration by signed challenge, circle creation, a commit adding
//! eleven members) and opens every device's live socket. Then, for each
//! concurrency level, it drives sends of 1 KiB ciphertext from random
//! members for a fixed time, counts the answered ones and the entries the
//! sockets receive, and beside it the same number of writers insert 1 KiB
//! rows, one durable transaction each, into a table of the same database
//! kind on the same disk. Last, it sends at half the best rate it saw and
//! measures each message from send to every socket's receipt. It prints
//! tables; it asserts nothing (a benchmark, not a test). Run it with
//! `scripts/bench` (release build, PostgreSQL with fsync on).
//!
//! The server never decrypts, so the ciphertext is random bytes (stamped with
//! its send time) in a padded PrivateMessage frame, as the server checks it,
//! and the commit is opaque: what is measured is the relay's
//! own path (authentication, rate limits, the ordered durable append, the
//! fan-out to live sockets). The load generator runs on its own runtime
//! (threads named `load`) so that the server's CPU can be told apart.

mod baseline;
mod cpu;
mod extension;
mod idle;
mod link;
mod live;
mod load;
mod sdk;
mod soak;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use hearth_tests::{Db, TestApp};
use live::{Live, percentile_ms};
use load::{Pace, Via};
use std::sync::Arc;
use std::time::Instant;
use tokio::runtime::Handle;

/// Hearth's send and delivery rates beside the database's durable commit rate.
#[derive(Debug, Parser)]
struct Args {
    /// sqlite, postgres or both (PostgreSQL needs TEST_DATABASE_URL; scripts/bench starts one).
    #[arg(long, default_value = "both")]
    db: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Circles of twelve devices, every device with a live socket.
    #[arg(long, default_value_t = 100)]
    circles: usize,
    /// Open no live sockets (to see what fan-out costs).
    #[arg(long)]
    no_sockets: bool,
    /// Idle sockets to hold against the server binary (0: skip). This
    /// machine allows a process 20,000 open files, so about 19,000 at most.
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Seconds to watch the idle sockets (the login safety check runs once a
    /// minute per socket).
    #[arg(long, default_value_t = 65)]
    idle_seconds: u64,
    /// Messages for the SDK's figures (0: skip).
    #[arg(long, default_value_t = 1000)]
    sdk_messages: usize,
    /// Concurrent senders (and concurrent writers), comma-separated.
    #[arg(long, default_value = "1,8,32")]
    concurrency: String,
    /// Instead of the load figures: what each action costs a phone over a
    /// slow link, at these one-way delays in milliseconds (comma-separated,
    /// e.g. 0,50,150): requests the server counted and wall time.
    #[arg(long)]
    link: Option<String>,
    /// Instead of the load run: `notifications()` in a process of its own,
    /// as a phone's notification extension runs it, for five circles of
    /// fifty new messages each, through a link of this one-way delay in
    /// milliseconds (50: a 100 ms round trip). Fails when a release build
    /// is over the budget (16 MiB resident, 2 s).
    #[arg(long, value_name = "MS")]
    notifications: Option<u64>,
    /// Instead of the load run: the soak (`scripts/soak`) for this many
    /// seconds per database: a realistic mix against the server binary
    /// (SQLite: one node; PostgreSQL: two), watched from outside. Fails on
    /// any error, any socket that did not get its circle's entries exactly
    /// once in order, or (for 5 minutes or more) memory or descriptors
    /// growing over 10 % after warm-up.
    #[arg(long, value_name = "SECONDS")]
    soak: Option<u64>,
    /// Circles of twelve for the soak.
    #[arg(long, default_value_t = 200)]
    soak_circles: usize,
    /// Messages per second for the soak, over all circles.
    #[arg(long, default_value_t = 20.0)]
    soak_rate: f64,
}

/// One database's figures.
struct Figures {
    rows: Vec<String>,
    latency: String,
}

async fn run(db: Db, args: &Args, levels: &[usize], load: &Handle) -> Result<Figures> {
    let app = TestApp::spawn_with(db, |c| {
        c.workers = None;
        c.database_max_connections = 32;
    })
    .await?;
    let senders = load::circles(&app, args.circles).await?;
    let origin = Instant::now();
    let tokens: Vec<String> = if args.no_sockets {
        Vec::new()
    } else {
        senders.iter().map(|s| s.token.clone()).collect()
    };
    let live = Arc::new(Live::open(load, &app.address, &tokens, origin).await?);
    let name = name(db);
    let mut vias = vec![("HTTP", Via::Http)];
    if live.len() > 0 {
        vias.push(("socket", Via::Socket(live.clone())));
    }
    let mut rows = Vec::new();
    let mut best = 0.0_f64;
    for &concurrency in levels {
        let mut measured = Vec::new();
        for (how, via) in &vias {
            let (cpu, delivered, started) = (cpu::sample(), live.deliveries(), Instant::now());
            let writes = write_transactions(&app).await?;
            let sent = load::sends(
                load,
                &app.address,
                &senders,
                concurrency,
                args.seconds,
                Pace::Flat,
                via.clone(),
                origin,
            )
            .await?;
            let sends = sent * args.seconds as f64;
            live.drained().await;
            let used = cpu::sample().since(&cpu);
            let delivered = (live.deliveries() - delivered) as f64;
            let fan_out = delivered / started.elapsed().as_secs_f64();
            let writes = (write_transactions(&app).await? - writes) / delivered.max(1.0);
            if matches!(via, Via::Http) {
                best = best.max(sent);
            }
            measured.push((how, sent, used, sends, fan_out, writes));
        }
        let committed = baseline::commits(&app.db, concurrency, args.seconds).await?;
        for (how, sent, used, sends, fan_out, writes) in measured {
            rows.push(format!(
                "| {name} | {how} | {concurrency} | {sent:.0} | {committed:.0} | {:.2} | {:.0} µs | {} | {fan_out:.0} | {writes:.3} |",
                sent / committed.max(1.0),
                used.server / sends.max(1.0) * 1e6,
                postgres_share(db, used.postgres / sends.max(1.0)),
            ));
        }
    }
    let rate = best / 2.0;
    let (cpu, delivered, started) = (cpu::sample(), live.deliveries(), Instant::now());
    let paced = load::sends(
        load,
        &app.address,
        &senders,
        8,
        args.seconds,
        Pace::Rate(rate),
        Via::Http,
        origin,
    )
    .await?;
    live.drained().await;
    let used = cpu::sample().since(&cpu);
    let deliveries = (live.deliveries() - delivered) as f64;
    let elapsed = started.elapsed().as_secs_f64();
    drop(vias);
    let live = Arc::try_unwrap(live).map_err(|_| anyhow::anyhow!("sockets still in use"))?;
    let latencies = live.close().await?;
    let latency = format!(
        "| {name} | {paced:.0} | {:.2} | {:.2} | {:.0} | {} | {:.1} µs | {} |",
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        deliveries / elapsed,
        latencies.len(),
        used.server / deliveries.max(1.0) * 1e6,
        postgres_share(db, used.postgres / deliveries.max(1.0)),
    );
    app.stop().await?;
    Ok(Figures { rows, latency })
}

/// The slow-link table: one row per action, its requests, and its wall
/// time at each delay (and in round trips of `2 × one way`).
async fn print_link(delays: &[u64]) -> Result<()> {
    let mut columns = Vec::new();
    for ms in delays {
        columns.push(link::measure(std::time::Duration::from_millis(*ms)).await?);
    }
    hearth_tests::drop_created_databases().await;
    println!(
        "Each action of a real SDK client through a link that holds every byte the given time each way (SQLite, in-process server):"
    );
    println!();
    let mut header = "| action | requests |".to_owned();
    let mut rule = "|---|---|".to_owned();
    for ms in delays {
        header.push_str(&format!(" {ms} ms one way |"));
        rule.push_str("---|");
    }
    println!("{header}");
    println!("{rule}");
    let Some(first) = columns.first() else {
        return Ok(());
    };
    for (i, row) in first.iter().enumerate() {
        let requests = if row.requests.is_nan() {
            "–".to_owned()
        } else {
            format!("{:.0}", row.requests)
        };
        let mut line = format!("| {} | {requests} |", row.action);
        for (ms, column) in delays.iter().zip(&columns) {
            let Some(cost) = column.get(i) else { continue };
            if *ms == 0 {
                line.push_str(&format!(" {:.1} ms |", cost.ms));
            } else {
                let trips = cost.ms / (2.0 * *ms as f64);
                line.push_str(&format!(" {:.0} ms ({trips:.1} RTT) |", cost.ms));
            }
        }
        println!("{line}");
    }
    Ok(())
}

/// The server's write transactions for messages and acknowledgements so
/// far (every socket acknowledges what it receives, as the SDK does).
async fn write_transactions(app: &TestApp) -> Result<f64> {
    Ok(app.counter("hearth_append_transactions_total").await?
        + app
            .counter("hearth_acknowledgement_transactions_total")
            .await?)
}

fn name(db: Db) -> &'static str {
    match db {
        Db::Sqlite => "SQLite",
        Db::Postgres => "PostgreSQL",
    }
}

/// PostgreSQL's CPU per unit, or a dash on SQLite.
fn postgres_share(db: Db, seconds: f64) -> String {
    match db {
        Db::Sqlite => "–".to_owned(),
        Db::Postgres => format!("{:.0} µs", seconds * 1e6),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let levels: Vec<usize> = args
        .concurrency
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .context("--concurrency: numbers, comma-separated")
        })
        .collect::<Result<_>>()?;
    let dbs = match args.db.as_str() {
        "sqlite" => vec![Db::Sqlite],
        "postgres" => vec![Db::Postgres],
        "both" => vec![Db::Sqlite, Db::Postgres],
        other => bail!("--db sqlite, postgres or both, not {other:?}"),
    };
    let server = tokio::runtime::Builder::new_multi_thread()
        .thread_name("server-rt")
        .enable_all()
        .build()?;
    if let Some(one_way) = args.notifications {
        return server.block_on(extension::print(std::time::Duration::from_millis(one_way)));
    }
    if let Some(seconds) = args.soak {
        let plan = soak::Plan {
            seconds,
            circles: args.soak_circles,
            rate: args.soak_rate,
        };
        let mut failed = Vec::new();
        for db in dbs {
            let outcome = server.block_on(soak::run(db, plan))?;
            if outcome.errors > 0 || outcome.inexact > 0 || outcome.flat == Some(false) {
                failed.push(name(db));
            }
        }
        server.block_on(hearth_tests::drop_created_databases());
        if !failed.is_empty() {
            bail!("the soak failed on {}", failed.join(" and "));
        }
        println!("\nthe soak held: no error, every socket exact");
        return Ok(());
    }
    if let Some(delays) = &args.link {
        let delays: Vec<u64> = delays
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .context("--link: milliseconds, comma-separated")
            })
            .collect::<Result<_>>()?;
        return server.block_on(print_link(&delays));
    }
    let load = tokio::runtime::Builder::new_multi_thread()
        .thread_name("load")
        .enable_all()
        .build()?;
    let sdk = if args.sdk_messages > 0 {
        Some(server.block_on(sdk::measure(args.sdk_messages))?)
    } else {
        None
    };
    let mut figures = Vec::new();
    let mut idle = Vec::new();
    for db in dbs {
        figures.push(server.block_on(run(db, &args, &levels, load.handle()))?);
        if args.idle > 0 {
            let measured = server.block_on(idle::measure(
                db,
                args.idle,
                args.idle_seconds,
                load.handle(),
            ))?;
            idle.push((db, measured));
        }
    }
    server.block_on(hearth_tests::drop_created_databases());
    println!(
        "{} circles of 12 with every socket live, 1 KiB ciphertext, {} s per figure, {} cores",
        args.circles,
        args.seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "| database | sent by | concurrent | Hearth sends/s | durable single-row commits/s | ratio | server CPU per send | PostgreSQL CPU per send | deliveries/s | write transactions per delivery |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for f in &figures {
        for row in &f.rows {
            println!("{row}");
        }
    }
    println!();
    println!(
        "At half the best send rate, 8 senders (send → every socket of the circle, including the sender's):"
    );
    println!();
    println!(
        "| database | sends/s | p50 ms | p99 ms | deliveries/s | samples | server CPU per delivery | PostgreSQL CPU per delivery |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for f in &figures {
        println!("{}", f.latency);
    }
    if let Some(sdk) = &sdk {
        println!();
        println!("The SDK (release, client data on this disk, server in-process on SQLite):");
        println!();
        println!(
            "| client data | messages | send_text each | offline catch-up of all | per message | raw openmls encrypt + decrypt | catch-up ÷ raw |"
        );
        println!("|---|---|---|---|---|---|---|");
        for row in &sdk.rows {
            let per_message_us = row.catch_up_s * 1e6 / sdk.count.max(1) as f64;
            println!(
                "| {} | {} | {:.2} ms | {:.3} s | {:.0} µs | {:.0} µs | {:.1} |",
                if row.sealed { "sealed" } else { "in the clear" },
                sdk.count,
                row.send_ms,
                row.catch_up_s,
                per_message_us,
                sdk.raw_us,
                per_message_us / sdk.raw_us.max(1.0),
            );
        }
    }
    if !idle.is_empty() {
        println!();
        println!("Idle sockets held against the server binary (a child process):");
        println!();
        println!(
            "| database | sockets | server memory | per socket | server CPU | per 10,000 sockets | PostgreSQL CPU | window |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for (db, i) in &idle {
            println!(
                "| {} | {} | {:.0} MiB | {:.1} KiB | {:.3} cores | {:.3} cores | {} | {} s |",
                name(*db),
                i.sockets,
                i.rss_mib,
                i.bytes_per_socket / 1024.0,
                i.server_cores,
                i.server_cores * 10_000.0 / i.sockets.max(1) as f64,
                match db {
                    Db::Sqlite => "–".to_owned(),
                    Db::Postgres => format!("{:.3} cores", i.postgres_cores),
                },
                i.window,
            );
        }
    }
    Ok(())
}
