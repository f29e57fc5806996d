//! A slow link on loopback: a TCP proxy that holds every byte for a fixed
//! time in each direction, as a mobile network does (the kernel here has no
//! netem). Clients connect to it as to the server; each chunk read from one
//! side is written to the other `one_way` later, in order, so a request and
//! its answer cost one round trip of `2 × one_way` on top of the server's
//! own time.
//!
//! It can also misbehave as a phone's network does ([`Trouble`]): hold every
//! request (a dead spot), or let requests through and lose the answers (the
//! connection drops just after the server acted).
//!
//! Only 127.0.0.1; it stops when dropped.

use anyhow::Result;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the link does to the bytes it carries, from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Trouble {
    /// Carries everything (after its delay).
    None = 0,
    /// Carries nothing either way: requests never reach the server.
    Stalled = 1,
    /// Carries requests to the server and loses every answer.
    Deaf = 2,
}

/// Which way bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ToServer,
    ToClient,
}

impl Trouble {
    fn drops(mode: u8, way: Way) -> bool {
        mode == Self::Stalled as u8 || (mode == Self::Deaf as u8 && way == Way::ToClient)
    }
}

/// The proxy.
pub struct SlowLink {
    /// Where clients connect: `http://127.0.0.1:port`.
    pub address: String,
    one_way: Duration,
    trouble: Arc<AtomicU8>,
    dropped: Arc<AtomicUsize>,
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
        let trouble = Arc::new(AtomicU8::new(Trouble::None as u8));
        let dropped = Arc::new(AtomicUsize::new(0));
        let (mode, lost) = (trouble.clone(), dropped.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (mode, lost) = (mode.clone(), lost.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            pump(client_read, server_write, one_way, Way::ToServer, &mode, &lost),
                            pump(server_read, client_write, one_way, Way::ToClient, &mode, &lost)
                        );
                    }
                });
            }
        });
        Ok(Self {
            address,
            one_way,
            trouble,
            dropped,
            task,
        })
    }

    /// Makes the link misbehave (or behave again) from now on. Bytes it
    /// drops are gone: a connection that lost some is of no further use,
    /// as on a real network.
    pub fn trouble(&self, trouble: Trouble) {
        self.trouble.store(trouble as u8, Ordering::SeqCst);
    }

    /// How many chunks the link has dropped so far: with [`Trouble::Stalled`],
    /// a request was made; with [`Trouble::Deaf`], the server answered one.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

/// Reads chunks from `from` and writes each to `to` `delay` after it was
/// read (unless the link's trouble drops them), until `from` closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    way: Way,
    mode: &AtomicU8,
    dropped: &AtomicUsize,
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
            Ok(_) if Trouble::drops(mode.load(Ordering::SeqCst), way) => {
                dropped.fetch_add(1, Ordering::SeqCst);
            }
            Ok(n) => {
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
