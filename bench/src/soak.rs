//! The soak: a realistic mix against the real server binary for a given
//! time, watched from outside.
//!
//! Circles of twelve are set up through the API (in this process, then the
//! server restarts as a child process on the same database: its memory and
//! file descriptors are its own). On PostgreSQL two server nodes share the
//! database and the devices are spread over them. Then, until the time is
//! up: a third of each circle's devices hold live sockets (acknowledging as
//! they read); the others sleep, have a Web Push target at a local stand-in,
//! and sync when a wake reaches them (as a phone does) and now and then
//! besides (as when its user opens the app); members send opaque messages at a set rate;
//! facilitators commit now and then (each commit moves the circle's epoch);
//! the sweeper runs every few seconds; access tokens expire and are
//! refreshed. Every ten seconds it samples each node's resident memory and
//! open file descriptors and the database's size; every minute (or interval)
//! it prints the sends, their p50/p99 latency and the errors.
//!
//! At the end every socket must have received, exactly once and in order,
//! every entry its circle's log gained while it was open ("exact"), and
//! there must be no error. Resident memory and descriptors must not grow by
//! more than 10 % after the warm-up (the first fifth); a run shorter than
//! five minutes prints them without judging.

use anyhow::{Result, bail};
use hearth_protocol::auth::LoginTokens;
use hearth_protocol::circles::{Accepted, CommitBundle, SendMessage};
use hearth_protocol::stream::{ClientFrame, ServerFrame};
use hearth_protocol::{Base64Bytes, CircleId};
use hearth_tests::process::ServerProcess;
use hearth_tests::push::{PushKeys, PushReceiver, Subscriber};
use hearth_tests::{Db, Stream, TestApp, TestDb, opaque_commit, opaque_message, rand_bytes};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Members per circle, the facilitator included.
const CIRCLE: usize = 12;
/// Of each circle's devices, these hold live sockets (the rest sleep).
const LIVE: usize = 4;
/// Commits per minute, over all circles.
const COMMITS_PER_MINUTE: u64 = 6;
/// Syncs of sleeping devices per second besides those a wake causes, over
/// all.
const SYNCS_PER_SECOND: u64 = 2;
/// Syncs running at once.
const SYNCS_AT_ONCE: usize = 8;
/// How often memory, descriptors and the database are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// What the soak is asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// How long the load runs.
    pub seconds: u64,
    /// Circles of twelve.
    pub circles: usize,
    /// Messages per second, over all circles.
    pub rate: f64,
}

/// One device, with its login (refreshed when its access token expires).
struct Device {
    node: usize,
    tokens: Mutex<LoginTokens>,
}

/// A circle: its devices, its epoch, and every entry its log gained during
/// the run, in order.
struct Circle {
    id: CircleId,
    devices: Vec<Arc<Device>>,
    /// Held while sending or committing: a send never races a commit into a
    /// `stale_epoch`.
    turn: Mutex<Epoch>,
}

struct Epoch {
    epoch: u64,
    /// Entries appended during the run (seq), in order.
    log: Vec<u64>,
}

/// What one live socket saw.
struct Seen {
    circle: usize,
    /// The cursor it resumed from.
    from: u64,
    seqs: Vec<u64>,
}

/// Counters shared by the load tasks.
#[derive(Default)]
struct Tally {
    sends: AtomicU64,
    commits: AtomicU64,
    syncs: AtomicU64,
    refreshes: AtomicU64,
    errors: AtomicU64,
    latencies: std::sync::Mutex<Vec<u32>>,
    first_errors: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut first) = self.first_errors.lock()
            && first.len() < 10
        {
            first.push(what);
        }
    }
}

/// What every load task shares.
#[derive(Clone)]
struct Load {
    http: reqwest::Client,
    addresses: Arc<Vec<String>>,
    circles: Arc<Vec<Arc<Circle>>>,
    tally: Arc<Tally>,
}

impl Load {
    /// The answer's body when it has `status`; otherwise the error is
    /// counted, naming `what`.
    async fn answered<T: serde::de::DeserializeOwned>(
        &self,
        answer: Result<reqwest::Response>,
        status: u16,
        what: &str,
    ) -> Option<T> {
        match answer {
            Ok(answer) if answer.status() == status => match answer.json::<T>().await {
                Ok(body) => Some(body),
                Err(err) => {
                    self.tally.error(format!("{what}'s answer: {err}"));
                    None
                }
            },
            Ok(answer) => {
                self.tally.error(format!("{what}: {}", answer.status()));
                None
            }
            Err(err) => {
                self.tally.error(format!("{what}: {err}"));
                None
            }
        }
    }
}

/// One sample of the nodes and the database.
struct Sample {
    at: u64,
    rss: Vec<u64>,
    fds: Vec<usize>,
    db_bytes: u64,
}

/// The soak's outcome.
pub struct Outcome {
    /// Errors (must be 0).
    pub errors: u64,
    /// Entries a socket missed, got twice or out of order (must be 0).
    pub inexact: u64,
    /// Whether memory and descriptors stayed flat (`None`: too short to say).
    pub flat: Option<bool>,
}

/// Runs the soak on `db` and prints what it saw.
pub async fn run(db: Db, plan: Plan) -> Result<Outcome> {
    let name = match db {
        Db::Sqlite => "SQLite, one node",
        Db::Postgres => "PostgreSQL, two nodes",
    };
    println!(
        "\n== soak on {name}: {} circles of {CIRCLE}, {} s, {} messages/s",
        plan.circles, plan.seconds, plan.rate
    );
    let started = Instant::now();
    let app = TestApp::spawn_with(db, |c| c.database_max_connections = 16).await?;
    let mut circles = Vec::new();
    let nodes = if matches!(db, Db::Postgres) { 2 } else { 1 };
    for n in 0..plan.circles {
        let mut people = Vec::new();
        for _ in 0..CIRCLE {
            people.push(app.signed_in().await?);
        }
        let id = app.opaque_circle_of(&people).await?;
        let devices = people
            .into_iter()
            .enumerate()
            .map(|(i, (_, tokens))| {
                Arc::new(Device {
                    node: (n + i) % nodes,
                    tokens: Mutex::new(tokens),
                })
            })
            .collect();
        circles.push(Arc::new(Circle {
            id,
            devices,
            turn: Mutex::new(Epoch {
                epoch: 1,
                log: Vec::new(),
            }),
        }));
    }
    let seed = app.signing_seed;
    let test_db = app.stop().await?;
    println!(
        "set up {} devices in {:.1} s",
        plan.circles * CIRCLE,
        started.elapsed().as_secs_f64()
    );

    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    let mut settings = keys.web_push_settings(30);
    settings.push(("HEARTH_SWEEP_INTERVAL_SECS".into(), "5".into()));
    settings.push(("HEARTH_DATABASE_MAX_CONNECTIONS".into(), "16".into()));
    let mut servers = Vec::new();
    for _ in 0..nodes {
        servers.push(ServerProcess::start_with(&test_db, &seed, &settings).await?);
    }
    let addresses: Arc<Vec<String>> = Arc::new(servers.iter().map(|s| s.address.clone()).collect());
    let pids: Vec<u32> = servers.iter().filter_map(ServerProcess::pid).collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let tally = Arc::new(Tally::default());

    // The sleeping devices' push targets, and who each one wakes.
    let mut woken_by = std::collections::HashMap::new();
    for (index, circle) in circles.iter().enumerate() {
        for (member, device) in circle.devices.iter().enumerate().skip(LIVE) {
            let subscriber = Subscriber::new()?;
            woken_by.insert(subscriber.id.clone(), (index, member));
            let target = subscriber.target(&receiver);
            let answer = authed(&http, &addresses, device, &tally, |r| {
                r.put("/v1/devices/current/push").json(&target)
            })
            .await?;
            if !answer.status().is_success() {
                bail!("registering a push target: {}", answer.status());
            }
        }
    }

    // The live sockets, each resumed at its circle's log as it stands.
    let stop = Arc::new(AtomicBool::new(false));
    let mut sockets = Vec::new();
    for (index, circle) in circles.iter().enumerate() {
        for device in &circle.devices[..LIVE] {
            let token = device.tokens.lock().await.access_token.clone();
            let mut stream = Stream::open(&addresses[device.node], &token).await?;
            stream.resume(&[(&circle.id, 1)]).await?;
            let (stop, tally) = (stop.clone(), tally.clone());
            let circle_id = circle.id.clone();
            sockets.push(tokio::spawn(async move {
                let mut seen = Seen {
                    circle: index,
                    from: 1,
                    seqs: Vec::new(),
                };
                let mut quiet_since = Instant::now();
                loop {
                    match stream.next(Duration::from_millis(250)).await {
                        Ok(Some(ServerFrame::Entry { entry, .. })) => {
                            seen.seqs.push(entry.seq);
                            quiet_since = Instant::now();
                            if seen.seqs.len().is_multiple_of(8) {
                                let ack = ClientFrame::Ack {
                                    circle_id: circle_id.clone(),
                                    seq: entry.seq,
                                };
                                if let Err(err) = stream.send(&ack).await {
                                    tally.error(format!("socket ack: {err}"));
                                }
                            }
                        }
                        Ok(Some(ServerFrame::Error { error, .. })) => {
                            tally.error(format!("socket error frame: {}", error.code));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            // Done once the load stopped and a second passed quietly.
                            if stop.load(Ordering::SeqCst)
                                && quiet_since.elapsed() > Duration::from_secs(1)
                            {
                                break;
                            }
                        }
                        Err(err) => {
                            tally.error(format!("socket closed: {err}"));
                            break;
                        }
                    }
                }
                let _ = stream.close().await;
                seen
            }));
        }
    }
    // Everything published so far is in the logs; wait for the sockets'
    // presence to settle before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let deadline = Instant::now() + Duration::from_secs(plan.seconds);
    let load_started = Instant::now();
    let load = Load {
        http: http.clone(),
        addresses: addresses.clone(),
        circles: Arc::new(circles.clone()),
        tally: tally.clone(),
    };
    let senders = spawn_sends(&load, plan, deadline);
    let committer = spawn_commits(&load, deadline);
    let receiver = Arc::new(receiver);
    let syncer = spawn_syncs(&load, (receiver.clone(), Arc::new(woken_by)), deadline);

    // Sample and report until the time is up.
    let interval = Duration::from_secs(plan.seconds.clamp(10, 60));
    let mut samples = Vec::new();
    let mut next_report = load_started + interval;
    let (mut sends_before, mut errors_before) = (0, 0);
    println!(
        "{:>6} {:>7} {:>8} {:>8} {:>7} {:>9} {:>5} {:>8}",
        "at s", "sends", "p50 ms", "p99 ms", "errors", "rss MiB", "fds", "db MiB"
    );
    while Instant::now() < deadline {
        tokio::time::sleep(SAMPLE_EVERY.min(deadline.saturating_duration_since(Instant::now())))
            .await;
        let sample = Sample {
            at: load_started.elapsed().as_secs(),
            rss: pids
                .iter()
                .map(|p| crate::idle::rss(*p).unwrap_or(0))
                .collect(),
            fds: pids.iter().map(|p| fds(*p).unwrap_or(0)).collect(),
            db_bytes: db_size(&test_db).await.unwrap_or(0),
        };
        if Instant::now() >= next_report || Instant::now() >= deadline {
            next_report += interval;
            let mut latencies = std::mem::take(&mut *lock(&tally.latencies));
            latencies.sort_unstable();
            let sends = tally.sends.load(Ordering::SeqCst);
            let errors = tally.errors.load(Ordering::SeqCst);
            println!(
                "{:>6} {:>7} {:>8.1} {:>8.1} {:>7} {:>9} {:>5} {:>8.1}",
                sample.at,
                sends - sends_before,
                crate::live::percentile_ms(&latencies, 0.5),
                crate::live::percentile_ms(&latencies, 0.99),
                errors - errors_before,
                sample
                    .rss
                    .iter()
                    .map(|b| format!("{:.1}", *b as f64 / 1_048_576.0))
                    .collect::<Vec<_>>()
                    .join("+"),
                sample
                    .fds
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("+"),
                sample.db_bytes as f64 / 1_048_576.0
            );
            (sends_before, errors_before) = (sends, errors);
        }
        samples.push(sample);
    }
    for task in senders {
        task.await?;
    }
    committer.await?;
    syncer.await?;
    stop.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    for socket in sockets {
        seen.push(socket.await?);
    }

    // Every socket got its circle's entries once, in order.
    let mut inexact = 0;
    for socket in &seen {
        let circle = &circles[socket.circle];
        let log = circle.turn.lock().await.log.clone();
        let expected: Vec<u64> = log.into_iter().filter(|s| *s > socket.from).collect();
        if socket.seqs != expected {
            inexact += 1;
            if inexact <= 3 {
                eprintln!(
                    "a socket of circle {} saw {} entries, expected {} (first difference at {:?})",
                    socket.circle,
                    socket.seqs.len(),
                    expected.len(),
                    socket.seqs.iter().zip(&expected).position(|(a, b)| a != b)
                );
            }
        }
    }
    let deliveries: usize = seen.iter().map(|s| s.seqs.len()).sum();
    let wakes = receiver.received().len();
    for server in servers {
        server.stop().await?;
    }
    let errors = tally.errors.load(Ordering::SeqCst);
    for error in lock(&tally.first_errors).iter() {
        eprintln!("error: {error}");
    }
    println!(
        "sends {}, commits {}, syncs {}, token refreshes {}, deliveries to sockets {deliveries}, \
         push wakes {wakes}, errors {errors}, sockets not exact {inexact} of {}",
        tally.sends.load(Ordering::SeqCst),
        tally.commits.load(Ordering::SeqCst),
        tally.syncs.load(Ordering::SeqCst),
        tally.refreshes.load(Ordering::SeqCst),
        seen.len()
    );
    let flat = growth(&samples, plan.seconds);
    Ok(Outcome {
        errors,
        inexact,
        flat,
    })
}

/// Whether memory and descriptors stayed within 10 % of the level after
/// warm-up (the first fifth of the run), node by node; `None` under five
/// minutes.
fn growth(samples: &[Sample], seconds: u64) -> Option<bool> {
    if seconds < 300 {
        println!(
            "memory and descriptors: the run is too short to judge growth (5 minutes or more)"
        );
        return None;
    }
    let warm = samples.iter().find(|s| s.at >= seconds / 5)?;
    let last = samples.last()?;
    let mut flat = true;
    for node in 0..warm.rss.len() {
        let rss = last.rss[node] as f64 / warm.rss[node].max(1) as f64;
        let fds = last.fds[node] as f64 / warm.fds[node].max(1) as f64;
        println!(
            "node {node}: resident memory {:.1} → {:.1} MiB ({:+.1} %), descriptors {} → {} ({:+.1} %) after warm-up",
            warm.rss[node] as f64 / 1_048_576.0,
            last.rss[node] as f64 / 1_048_576.0,
            (rss - 1.0) * 100.0,
            warm.fds[node],
            last.fds[node],
            (fds - 1.0) * 100.0
        );
        flat &= rss <= 1.10 && fds <= 1.10;
    }
    Some(flat)
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A request as `device` on its node; on a `401` (its access token
/// expired) the login is refreshed once and the request made again.
async fn authed(
    http: &reqwest::Client,
    addresses: &[String],
    device: &Device,
    tally: &Tally,
    request: impl Fn(Requests<'_>) -> reqwest::RequestBuilder,
) -> Result<reqwest::Response> {
    let address = &addresses[device.node];
    for attempt in 0..2 {
        let token = device.tokens.lock().await.access_token.clone();
        let answer = request(Requests { http, address })
            .bearer_auth(&token)
            .send()
            .await?;
        if answer.status() != 401 || attempt == 1 {
            return Ok(answer);
        }
        let mut tokens = device.tokens.lock().await;
        if tokens.access_token == token {
            let refreshed = http
                .post(format!("{address}/v1/logins/refresh"))
                .json(&serde_json::json!({ "refresh_token": tokens.refresh_token }))
                .send()
                .await?;
            if !refreshed.status().is_success() {
                bail!("refreshing a login: {}", refreshed.status());
            }
            *tokens = refreshed.json().await?;
            tally.refreshes.fetch_add(1, Ordering::SeqCst);
        }
    }
    bail!("unreachable: two attempts made")
}

/// Builds a request on one node.
struct Requests<'a> {
    http: &'a reqwest::Client,
    address: &'a str,
}

impl Requests<'_> {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.address))
    }
    fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.put(format!("{}{path}", self.address))
    }
}

/// A random index below `n`.
fn pick(n: usize) -> usize {
    (u64::from_le_bytes(rand_bytes::<8>()) % n.max(1) as u64) as usize
}

/// Senders at `plan.rate` messages a second over all circles, spread over
/// eight tasks, until `deadline`.
fn spawn_sends(load: &Load, plan: Plan, deadline: Instant) -> Vec<tokio::task::JoinHandle<()>> {
    const TASKS: usize = 8;
    (0..TASKS)
        .map(|_| {
            let load = load.clone();
            let every = Duration::from_secs_f64(TASKS as f64 / plan.rate.max(0.01));
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while Instant::now() < deadline {
                    ticks.tick().await;
                    let circle = &load.circles[pick(load.circles.len())];
                    let device = &circle.devices[pick(CIRCLE)];
                    let mut turn = circle.turn.lock().await;
                    let body = SendMessage {
                        message_id: uuid::Uuid::new_v4(),
                        epoch: turn.epoch,
                        ciphertext: Base64Bytes::from(opaque_message(
                            &circle.id,
                            turn.epoch,
                            &rand_bytes::<16>(),
                        )),
                    };
                    let path = format!("/v1/circles/{}/messages", circle.id);
                    let sent = Instant::now();
                    let answer = authed(&load.http, &load.addresses, device, &load.tally, |r| {
                        r.post(&path).json(&body)
                    })
                    .await;
                    let took = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                    if let Some(accepted) = load.answered::<Accepted>(answer, 201, "a send").await {
                        turn.log.push(accepted.seq);
                        load.tally.sends.fetch_add(1, Ordering::SeqCst);
                        lock(&load.tally.latencies).push(took);
                    }
                }
            })
        })
        .collect()
}

/// Facilitators' commits (opaque, moving the epoch), a few a minute.
fn spawn_commits(load: &Load, deadline: Instant) -> tokio::task::JoinHandle<()> {
    let load = load.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60 / COMMITS_PER_MINUTE));
        ticks.tick().await;
        while Instant::now() < deadline {
            ticks.tick().await;
            let circle = &load.circles[pick(load.circles.len())];
            let mut turn = circle.turn.lock().await;
            let bundle = CommitBundle {
                epoch: turn.epoch,
                commit: Base64Bytes::from(opaque_commit(&circle.id, turn.epoch)),
                welcome: None,
                group_info: None,
                added: Vec::new(),
                removed: Vec::new(),
                join_request_id: None,
            };
            let path = format!("/v1/circles/{}/commits", circle.id);
            let answer = authed(
                &load.http,
                &load.addresses,
                &circle.devices[0],
                &load.tally,
                |r| r.post(&path).json(&bundle),
            )
            .await;
            if let Some(accepted) = load.answered::<Accepted>(answer, 201, "a commit").await {
                turn.log.push(accepted.seq);
                turn.epoch = accepted.epoch;
                load.tally.commits.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
}

/// Who a wake at the stand-in is for: subscription id to (circle, member).
type Wakes = (
    Arc<PushReceiver>,
    Arc<std::collections::HashMap<String, (usize, usize)>>,
);

/// Sleeping devices syncing (and so acknowledging): each one a wake reached,
/// and a few at random besides.
fn spawn_syncs(
    load: &Load,
    (receiver, woken_by): Wakes,
    deadline: Instant,
) -> tokio::task::JoinHandle<()> {
    let load = load.clone();
    tokio::spawn(async move {
        let cursors: Arc<Mutex<BTreeMap<(usize, usize), u64>>> = Arc::default();
        let at_once = Arc::new(tokio::sync::Semaphore::new(SYNCS_AT_ONCE));
        let mut seen_wakes = 0;
        let tick = Duration::from_millis(250);
        let random_per_tick = (SYNCS_PER_SECOND as f64 * tick.as_secs_f64()).max(1.0) as usize;
        let mut ticks = tokio::time::interval(tick);
        let mut running = Vec::new();
        while Instant::now() < deadline {
            ticks.tick().await;
            let (wakes, all) = receiver.received_since(seen_wakes);
            seen_wakes = all;
            let mut due: Vec<(usize, usize)> = wakes
                .iter()
                .filter_map(|w| match &w.service {
                    hearth_tests::push::Service::WebPush(id) => woken_by.get(id).copied(),
                    _ => None,
                })
                .collect();
            for _ in 0..random_per_tick {
                due.push((pick(load.circles.len()), LIVE + pick(CIRCLE - LIVE)));
            }
            for (index, member) in due {
                let Ok(permit) = at_once.clone().acquire_owned().await else {
                    return;
                };
                let (load, cursors) = (load.clone(), cursors.clone());
                running.push(tokio::spawn(async move {
                    let _permit = permit;
                    let circle = &load.circles[index];
                    let after = cursors
                        .lock()
                        .await
                        .get(&(index, member))
                        .copied()
                        .unwrap_or(1);
                    let body = serde_json::json!({
                        "cursors": [{ "circle_id": circle.id, "after": after }],
                        "welcomes_done": [],
                    });
                    let answer = authed(
                        &load.http,
                        &load.addresses,
                        &circle.devices[member],
                        &load.tally,
                        |r| r.post("/v1/sync").json(&body),
                    )
                    .await;
                    let synced = load
                        .answered::<hearth_protocol::sync::SyncResponse>(answer, 200, "a sync")
                        .await;
                    if let Some(synced) = synced {
                        if let Some(page) = synced.circles.first() {
                            let mut cursors = cursors.lock().await;
                            let cursor = cursors.entry((index, member)).or_insert(1);
                            *cursor = (*cursor).max(page.next_after);
                        }
                        load.tally.syncs.fetch_add(1, Ordering::SeqCst);
                    }
                }));
            }
            running.retain(|task| !task.is_finished());
        }
        for task in running {
            let _ = task.await;
        }
    })
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// The database's size on disk: SQLite's files, or PostgreSQL's own count.
async fn db_size(db: &TestDb) -> Result<u64> {
    match db {
        TestDb::Sqlite(dir) => Ok(std::fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()),
        TestDb::Postgres(url) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
            let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(&mut conn)
                .await?;
            Ok(u64::try_from(size).unwrap_or(0))
        }
    }
}
