//! Every device's live socket, opened on the load generator's runtime: each
//! counts the entries it receives and, for sends stamped as measured, how
//! long they took from the sender's clock to its own.

use anyhow::{Result, bail};
use hearth_protocol::stream::ServerFrame;
use hearth_tests::Stream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Byte 8 of a stamped ciphertext: this send's latency counts.
const MEASURED: u8 = 1;

/// A 1 KiB ciphertext whose first 8 bytes are the time of sending (µs since
/// `origin`) and whose ninth says whether its latency is measured. The
/// server never decrypts, so random-looking bytes are all it needs.
pub fn stamped(origin: Instant, measured: bool, filler: &[u8]) -> Vec<u8> {
    let mut bytes = filler.to_vec();
    let micros = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
    bytes[..8].copy_from_slice(&micros.to_be_bytes());
    bytes[8] = u8::from(measured) * MEASURED;
    bytes
}

/// The open sockets.
pub struct Live {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<Vec<u32>>>>,
    deliveries: Arc<AtomicU64>,
}

impl Live {
    /// Opens and resumes one socket per token (on `load`), and returns once
    /// all are ready.
    pub async fn open(
        load: &Handle,
        address: &str,
        tokens: &[String],
        origin: Instant,
    ) -> Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let deliveries = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let mut ready = Vec::new();
        for token in tokens {
            let (address, token) = (address.to_owned(), token.clone());
            let (deliveries, mut stopped) = (deliveries.clone(), stopped.clone());
            let (opened, is_open) = tokio::sync::oneshot::channel();
            ready.push(is_open);
            tasks.push(load.spawn(async move {
                let mut stream = Stream::open(&address, &token).await?;
                stream.resume(&[]).await?;
                let _ = opened.send(());
                let mut latencies = Vec::new();
                loop {
                    let frame = tokio::select! {
                        _ = stopped.changed() => break,
                        frame = stream.next(Duration::from_secs(3600)) => frame?,
                    };
                    if let Some(ServerFrame::Entry { entry, .. }) = frame {
                        deliveries.fetch_add(1, Ordering::Relaxed);
                        let bytes = entry.ciphertext.as_slice();
                        if bytes.len() > 8 && bytes[8] == MEASURED {
                            let sent = u64::from_be_bytes(bytes[..8].try_into()?);
                            let now = u64::try_from(origin.elapsed().as_micros())?;
                            latencies.push(u32::try_from(now.saturating_sub(sent))?);
                        }
                    }
                }
                let _ = stream.close().await;
                Ok(latencies)
            }));
        }
        for is_open in ready {
            if is_open.await.is_err() {
                bail!("a live socket failed to open");
            }
        }
        Ok(Self {
            stop,
            tasks,
            deliveries,
        })
    }

    /// Entries delivered so far, over every socket.
    pub fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    /// Waits until deliveries stop arriving (for 300 ms, at most 30 s):
    /// what was sent has been fanned out.
    pub async fn drained(&self) {
        let give_up = Instant::now() + Duration::from_secs(30);
        let mut last = self.deliveries();
        let mut quiet = 0;
        while quiet < 3 && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = self.deliveries();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
        }
    }

    /// Closes every socket; the measured latencies in µs, sorted.
    pub async fn close(self) -> Result<Vec<u32>> {
        let _ = self.stop.send(true);
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await??);
        }
        all.sort_unstable();
        Ok(all)
    }
}

/// The value below which `share` of the sorted samples lie, in ms.
pub fn percentile_ms(sorted: &[u32], share: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * share).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}
