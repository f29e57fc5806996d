//! Idle sockets: what holding many open, quiet WebSockets costs the server.
//!
//! The real `hearth-server` binary runs as a child process (so its memory
//! and CPU are its own), on a database where devices were set up through
//! the API; the bench opens `count` live sockets for them from many loopback
//! source addresses (one address has only ~28,000 ports), resumes each, and
//! then measures the server's CPU over a quiet window and its resident
//! memory at the window's end. Pings (every 15 s) and the once-a-minute
//! login safety check are what the server still does for an idle socket, so
//! a window of at least a minute sees both, and the server's sweep (every
//! 60 s), which hands memory freed since back to the system.

use crate::cpu;
use anyhow::{Context as _, Result, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use hearth_protocol::stream::ClientFrame;
use hearth_tests::process::ServerProcess;
use hearth_tests::{Db, TestApp};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Sockets per loopback source address.
const PER_SOURCE: usize = 20_000;

/// What idle sockets cost.
pub struct Idle {
    /// Sockets held.
    pub sockets: usize,
    /// The server's resident memory growth per socket, bytes.
    pub bytes_per_socket: f64,
    /// The server's resident memory with every socket open, MiB.
    pub rss_mib: f64,
    /// The server's CPU while idle, in cores.
    pub server_cores: f64,
    /// PostgreSQL's CPU meanwhile, in cores.
    pub postgres_cores: f64,
    /// The quiet window, seconds.
    pub window: u64,
}

/// Resident memory of a process, bytes.
pub fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("no VmRSS value")?
        .parse()?;
    Ok(kib * 1024)
}

/// Opens `count` sockets against a child server on a fresh `db` and measures
/// it over `window` seconds.
pub async fn measure(db: Db, count: usize, window: u64, load: &Handle) -> Result<Idle> {
    let app = TestApp::spawn(db).await?;
    let mut tokens = Vec::new();
    for _ in 0..100 {
        tokens.push(app.signed_in().await?.1.access_token);
    }
    let seed = app.signing_seed;
    let test_db = app.stop().await?;
    let server = ServerProcess::start(&test_db, &seed).await?;
    let pid = server.pid().context("the server exited")?;
    let port: u16 = server
        .address
        .rsplit(':')
        .next()
        .context("no port")?
        .parse()?;
    let before = rss(pid)?;
    let (stop, stopped) = watch::channel(false);
    let mut opened = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..count {
        let token = tokens[n % tokens.len()].clone();
        let source = Ipv4Addr::new(127, 0, 1 + u8::try_from(n / PER_SOURCE)?, 1);
        let mut stopped = stopped.clone();
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        opened.push(is_ready);
        tasks.push(load.spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from((source, 0)))?;
            let stream = socket
                .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                .await?;
            let mut request = format!("ws://127.0.0.1:{port}/v1/stream").into_client_request()?;
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
            let (mut ws, _) = tokio_tungstenite::client_async(request, stream).await?;
            let resume = serde_json::to_string(&ClientFrame::Resume {
                cursors: Vec::new(),
            })?;
            ws.send(Message::text(resume)).await?;
            // `ready` comes back first.
            ws.next().await.context("closed before ready")??;
            let _ = ready.send(());
            // Reading answers the server's pings; nothing else happens.
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    message = ws.next() => match message {
                        Some(Ok(_)) => {}
                        _ => bail!("the server closed an idle socket"),
                    },
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok(())
        }));
    }
    for is_ready in opened {
        if is_ready.await.is_err() {
            // The task failed: its error says why.
            for task in tasks {
                task.await??;
            }
            bail!("an idle socket failed to open");
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu_before, started) = (cpu::process(pid)?, Instant::now());
    let pg_before = cpu::sample();
    tokio::time::sleep(Duration::from_secs(window)).await;
    // Measured after the quiet window: the steady state, once the server's
    // sweep (every 60 s) has handed back what the opening burst freed.
    let with_sockets = rss(pid)?;
    let server_cpu = cpu::process(pid)? - cpu_before;
    let postgres = cpu::sample().since(&pg_before).postgres;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    for task in tasks {
        task.await??;
    }
    server.stop().await?;
    drop(test_db);
    Ok(Idle {
        sockets: count,
        bytes_per_socket: with_sockets.saturating_sub(before) as f64 / count.max(1) as f64,
        rss_mib: with_sockets as f64 / (1024.0 * 1024.0),
        server_cores: server_cpu / elapsed,
        postgres_cores: postgres / elapsed,
        window,
    })
}
