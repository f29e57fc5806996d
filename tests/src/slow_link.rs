//! A slow link on loopback: a TCP proxy that holds every byte for a fixed
//! time in each direction, as a mobile network does (the kernel here has no
//! netem). Clients connect to it as to the server; each chunk read from one
//! side is written to the other `one_way` later, in order, so a request and
//! its answer cost one round trip of `2 × one_way` on top of the server's
//! own time.
//!
//! It can also misbehave as a phone's network does ([`Trouble`]): hold every
//! request (a dead spot), or let requests through and lose the answers; or
//! cut the connection the moment the server answers one chosen request
//! ([`SlowLink::cut_answer_to`]: the server acted, the client never hears).
//!
//! Only 127.0.0.1; it stops when dropped.

use anyhow::Result;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    cut: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

/// What both directions of one connection share.
struct Shared {
    mode: Arc<AtomicU8>,
    dropped: Arc<AtomicUsize>,
    /// Request lines whose answers are to be cut (one each).
    cut: Arc<Mutex<Vec<Vec<u8>>>>,
    /// This connection's next answer is cut.
    cutting: AtomicBool,
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
        let cut = Arc::new(Mutex::new(Vec::new()));
        let (mode, lost, cuts) = (trouble.clone(), dropped.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = Shared {
                    mode: mode.clone(),
                    dropped: lost.clone(),
                    cut: cuts.clone(),
                    cutting: AtomicBool::new(false),
                };
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            pump(client_read, server_write, one_way, Way::ToServer, &shared),
                            pump(server_read, client_write, one_way, Way::ToClient, &shared)
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
            cut,
            task,
        })
    }

    /// Makes the link misbehave (or behave again) from now on. Bytes it
    /// drops are gone: a connection that lost some is of no further use,
    /// as on a real network.
    pub fn trouble(&self, trouble: Trouble) {
        self.trouble.store(trouble as u8, Ordering::SeqCst);
    }

    /// Cuts the connection that carries the next request whose bytes hold
    /// `marker` (say `"POST /v1/circles/"` or `"/commits "`) the moment the
    /// server's answer to it arrives: the server acted, the client hears
    /// only that the connection closed. Once per call.
    pub fn cut_answer_to(&self, marker: &str) {
        if let Ok(mut cut) = self.cut.lock() {
            cut.push(marker.as_bytes().to_vec());
        }
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
    shared: &Shared,
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
            Ok(_) if Trouble::drops(shared.mode.load(Ordering::SeqCst), way) => {
                shared.dropped.fetch_add(1, Ordering::SeqCst);
            }
            Ok(_) if way == Way::ToClient && shared.cutting.load(Ordering::SeqCst) => {
                shared.dropped.fetch_add(1, Ordering::SeqCst);
                break;
            }
            Ok(n) => {
                if way == Way::ToServer
                    && let Ok(mut cut) = shared.cut.lock()
                    && let Some(i) = cut
                        .iter()
                        .position(|m| buffer[..n].windows(m.len()).any(|w| w == m.as_slice()))
                {
                    cut.remove(i);
                    shared.cutting.store(true, Ordering::SeqCst);
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
