//! A slow link on loopback: a TCP proxy that holds every byte for a fixed
//! time in each direction, as a mobile network does (the kernel here has no
//! netem). Clients connect to it as to the server; each chunk read from one
//! side is written to the other `one_way` later, in order, so a request and
//! its answer cost one round trip of `2 × one_way` on top of the server's
//! own time.
//!
//! Only 127.0.0.1; it stops when dropped.

use anyhow::Result;
use std::net::SocketAddr;
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
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            pump(client_read, server_write, one_way),
                            pump(server_read, client_write, one_way)
                        );
                    }
                });
            }
        });
        Ok(Self {
            address,
            one_way,
            task,
        })
    }
}

/// Reads chunks from `from` and writes each to `to` `delay` after it was
/// read, until `from` closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
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
