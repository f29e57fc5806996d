//! Every device's live socket, opened on the load generator's runtime: each
//! counts the entries it receives and, for sends stamped as measured, how
//! long they took from the sender's clock to its own. A socket can also
//! send (`ClientFrame::Send`), the way an app with its socket open does.

use anyhow::{Context as _, Result, bail};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use hearth_protocol::CircleId;
use hearth_protocol::circles::SendMessage;
use hearth_protocol::framing::{self, ContentType};
use hearth_protocol::stream::{ClientFrame, ServerFrame};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Byte 8 of a stamped ciphertext: this send's latency counts.
const MEASURED: u8 = 1;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Sends waiting for their answer, by request id: `true` when accepted.
type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<bool>>>>;

/// A socket's sending half, shared by its reader (acknowledgements) and
/// the senders.
type Sink = Arc<tokio::sync::Mutex<SplitSink<Socket, Message>>>;

/// An application message for `circle` at epoch 1, framed as the server
/// checks it, whose 1 KiB ciphertext begins with the time of sending (µs
/// since `origin`, 8 bytes) and a byte saying whether its latency is
/// measured. The server never decrypts, so random-looking bytes are all the
/// ciphertext needs.
pub fn stamped(origin: Instant, measured: bool, circle: &CircleId, filler: &[u8]) -> Vec<u8> {
    let mut bytes = filler.to_vec();
    let micros = u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX);
    bytes[..8].copy_from_slice(&micros.to_be_bytes());
    bytes[8] = u8::from(measured) * MEASURED;
    framing::private_message(
        circle.as_bytes(),
        1,
        ContentType::Application,
        &filler[..28],
        &bytes,
    )
}

/// The open sockets.
pub struct Live {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<Vec<u32>>>>,
    deliveries: Arc<AtomicU64>,
    /// Each socket's sending half, in the order of the tokens.
    sinks: Vec<Sink>,
    waiting: Waiting,
    next_request: AtomicU64,
}

/// Opens `/v1/stream` and resumes; returns the socket once `ready` came.
async fn open_socket(address: &str, token: &str) -> Result<Socket> {
    let url = format!("{}/v1/stream", address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;
    let resume = serde_json::to_string(&ClientFrame::Resume {
        cursors: Vec::new(),
    })?;
    socket.send(Message::text(resume)).await?;
    loop {
        match socket.next().await.context("closed before ready")?? {
            Message::Text(text) => match serde_json::from_str(text.as_str())? {
                ServerFrame::Ready { .. } => return Ok(socket),
                other => bail!("expected ready, got {other:?}"),
            },
            Message::Ping(_) | Message::Pong(_) => {}
            other => bail!("expected ready, got {other:?}"),
        }
    }
}

/// Reads a socket until told to stop: counts entries, times measured ones,
/// hands answers to the sends waiting for them.
async fn read(
    mut stream: SplitStream<Socket>,
    sink: Sink,
    mut stopped: watch::Receiver<bool>,
    deliveries: Arc<AtomicU64>,
    waiting: Waiting,
    origin: Instant,
) -> Result<Vec<u32>> {
    let mut latencies = Vec::new();
    loop {
        let message = tokio::select! {
            _ = stopped.changed() => break,
            message = stream.next() => match message {
                Some(message) => message?,
                None => bail!("the server closed a live socket"),
            },
        };
        let Message::Text(text) = message else {
            continue;
        };
        match serde_json::from_str(text.as_str())? {
            ServerFrame::Entry { circle_id, entry } => {
                deliveries.fetch_add(1, Ordering::Relaxed);
                // As the SDK does: each entry acknowledged on the socket.
                let ack = serde_json::to_string(&ClientFrame::Ack {
                    circle_id,
                    seq: entry.seq,
                })?;
                // A socket that cannot take it is closing; its reader goes on
                // to the end so the sends waiting on it get their answers.
                let _ = sink.lock().await.send(Message::text(ack)).await;
                let bytes = framing::private_ciphertext(entry.ciphertext.as_slice()).unwrap_or(&[]);
                if bytes.len() > 8 && bytes[8] == MEASURED {
                    let sent = u64::from_be_bytes(bytes[..8].try_into()?);
                    let now = u64::try_from(origin.elapsed().as_micros())?;
                    latencies.push(u32::try_from(now.saturating_sub(sent))?);
                }
            }
            ServerFrame::Sent { request_id, .. } => answer(&waiting, request_id, true),
            ServerFrame::Error {
                request_id: Some(request_id),
                ..
            } => answer(&waiting, request_id, false),
            _ => {}
        }
    }
    Ok(latencies)
}

fn answer(waiting: &Waiting, request_id: u64, accepted: bool) {
    let sender = waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .remove(&request_id);
    if let Some(sender) = sender {
        let _ = sender.send(accepted);
    }
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
        let waiting: Waiting = Arc::default();
        let opening: Vec<_> = tokens
            .iter()
            .map(|token| {
                let (address, token) = (address.to_owned(), token.clone());
                load.spawn(async move { open_socket(&address, &token).await })
            })
            .collect();
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for opened in opening {
            let (sink, stream) = opened.await??.split();
            let sink = Arc::new(tokio::sync::Mutex::new(sink));
            sinks.push(sink.clone());
            tasks.push(load.spawn(read(
                stream,
                sink,
                stopped.clone(),
                deliveries.clone(),
                waiting.clone(),
                origin,
            )));
        }
        Ok(Self {
            stop,
            tasks,
            deliveries,
            sinks,
            waiting,
            next_request: AtomicU64::new(1),
        })
    }

    /// Sends a message over socket `index` and waits for its answer.
    pub async fn send(&self, index: usize, circle: &CircleId, message: SendMessage) -> Result<()> {
        let request_id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (answered, answer) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(request_id, answered);
        let frame = serde_json::to_string(&ClientFrame::Send {
            request_id,
            circle_id: circle.clone(),
            message,
        })?;
        let sink = self.sinks.get(index).context("no such socket")?;
        sink.lock().await.send(Message::text(frame)).await?;
        if !answer.await? {
            bail!("a send over a socket was refused");
        }
        Ok(())
    }

    /// How many sockets are open.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Entries delivered so far, over every socket.
    pub fn deliveries(&self) -> u64 {
        self.deliveries.load(Ordering::Relaxed)
    }

    /// Waits until deliveries stop arriving (for 300 ms, at most 30 s):
    /// what was sent has been fanned out.
    pub async fn drained(&self) {
        let give_up = Instant::now() + std::time::Duration::from_secs(30);
        let mut last = self.deliveries();
        let mut quiet = 0;
        while quiet < 3 && Instant::now() < give_up {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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
        for sink in self.sinks {
            let _ = sink.lock().await.close().await;
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
