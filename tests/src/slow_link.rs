//! A slow link on loopback: a TCP proxy that holds every byte for a fixed
//! time in each direction, as a mobile network does (the kernel here has no
//! netem). Clients connect to it as to the server; each chunk read from one
//! side is written to the other `one_way` later, in order, so a request and
//! its answer cost one round trip of `2 × one_way` on top of the server's
//! own time. It can also cut every connection after the server has answered
//! (a phone losing its network with the answer in flight).
//!
//! Only 127.0.0.1; it stops when dropped.

use anyhow::Result;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The proxy.
pub struct SlowLink {
    /// Where clients connect: `http://127.0.0.1:port`.
    pub address: String,
    one_way: Duration,
    drop_answers: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for SlowLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowLink")
            .field("address", &self.address)
            .field("one_way", &self.one_way)
            .finish_non_exhaustive()
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SlowLink {
    /// A proxy to `upstream` (`http://127.0.0.1:port`) that delays each
    /// direction by `one_way`.
    pub async fn start(upstream: &str, one_way: Duration) -> Result<Self> {
        let target: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()?;
        anyhow::ensure!(target.ip().is_loopback(), "a slow link only to loopback");
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}", listener.local_addr()?);
        let drop_answers = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let (dropping, counting) = (drop_answers.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counting.fetch_add(1, Ordering::Relaxed);
                let dropping = dropping.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        carry(client, server, one_way, dropping).await;
                    }
                });
            }
        });
        Ok(Self {
            address,
            one_way,
            drop_answers,
            connections,
            task,
        })
    }

    /// From now on, whatever the server answers is thrown away and the
    /// connection closed: the request reached the server, its answer never
    /// reaches the client.
    pub fn lose_answers(&self, lose: bool) {
        self.drop_answers.store(lose, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Pumps both directions of one connection until either side closes.
async fn carry(client: TcpStream, server: TcpStream, one_way: Duration, lose: Arc<AtomicBool>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = pump(client_read, server_write, one_way, None);
    let down = pump(server_read, client_write, one_way, Some(lose));
    tokio::join!(up, down);
}

/// Reads chunks from `from` and writes each to `to` `delay` after it was
/// read. With `lose` set when a chunk arrives, the connection ends there
/// instead.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    lose: Option<Arc<AtomicBool>>,
) {
    let (queue, mut queued) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buffer = vec![0_u8; 64 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if lose.as_ref().is_some_and(|l| l.load(Ordering::SeqCst)) {
                    writer.abort();
                    return;
                }
                if queue
                    .send((Instant::now() + delay, buffer[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(queue);
    let _ = writer.await;
}
