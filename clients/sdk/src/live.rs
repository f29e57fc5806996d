//! The live stream: `/v1/stream` decoded into [`Event`]s, resuming by itself.
//!
//! A background task holds the WebSocket, resumes from the stored cursor of
//! every circle, runs each entry through the same processing as `sync`
//! (so the two never process an entry twice) and the same driver for what it
//! leaves to do, acknowledges it, and reconnects with backoff after any drop.
//! While it is open, the outbox sends over it too ([`Client::send_live`]): a
//! phone's send then costs one round trip on a connection already up, not a
//! new HTTPS connection after an idle minute. Dropping the receiver ends the
//! task.

use crate::endpoints::STREAM;
use crate::store::Gone;
use crate::{Client, ClientError, Message, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use hearth_protocol::CircleId;
use hearth_protocol::circles::{Accepted, EntryKind, SendMessage};
use hearth_protocol::content::Envelope;
use hearth_protocol::stream::{ClientFrame, Cursor, ServerFrame};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// Something that happened, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The stream is (again) connected and caught up from the cursors.
    Connected,
    /// The connection dropped; the client reconnects by itself.
    Disconnected,
    /// A message arrived, decrypted and stored. This device's own messages
    /// arrive too once the server has them (sent by this client or another
    /// process on the same data directory), so a view can follow the whole
    /// conversation from events alone.
    Message {
        /// The circle.
        circle_id: CircleId,
        /// The message.
        message: Message,
    },
    /// This device joined a circle from a Welcome.
    Joined {
        /// The circle.
        circle_id: CircleId,
    },
    /// This device is no longer on the circle's roster: a facilitator
    /// removed it, or it was revoked. Its history stays readable.
    Removed {
        /// The circle.
        circle_id: CircleId,
    },
    /// This device's MLS state no longer matched the circle's (a commit it
    /// could not process, or state lost) and it rejoined by external commit:
    /// messages sent in between cannot be read on this device.
    Rejoined {
        /// The circle.
        circle_id: CircleId,
    },
    /// A message in the circle could not be decrypted on this device (sent
    /// in an epoch this device has no keys for, or its key already spent):
    /// it is passed over, and this says so rather than leaving a silent
    /// gap.
    Undecryptable {
        /// The circle.
        circle_id: CircleId,
        /// Where it stood in the log.
        seq: u64,
    },
    /// A Welcome for this device could not be used (no ratchet tree, or for a
    /// KeyPackage this device no longer holds). With `repaired`, the device
    /// joined by external commit instead; otherwise it is not in the circle.
    WelcomeUnusable {
        /// The circle.
        circle_id: CircleId,
        /// Whether the device is in the circle after all.
        repaired: bool,
    },
    /// This device brought other devices of its account into the circle.
    DevicesAdded {
        /// The circle.
        circle_id: CircleId,
        /// The devices added.
        devices: Vec<hearth_protocol::DeviceId>,
    },
    /// The server was restored from a backup (its log generation changed):
    /// messages sent shortly before the restore may be gone from it, so
    /// members who had not read them will not, and this device may hold some
    /// that others never see. Nothing new is skipped (the server's numbers
    /// jumped ahead). Tell the user once.
    Restored,
    /// A join request arrived (facilitators).
    JoinRequest {
        /// The circle.
        circle_id: CircleId,
        /// The request, for `Client::join_requests` and `approve`.
        request_id: uuid::Uuid,
    },
}

/// A send handed to the open socket, with where its answer goes.
pub(crate) struct LiveSend {
    circle: CircleId,
    message: SendMessage,
    envelope: Envelope,
    answer: oneshot::Sender<Result<Accepted>>,
}

/// The open socket's queue of sends, while there is one.
pub(crate) type LiveSends = Mutex<Option<mpsc::Sender<LiveSend>>>;

/// How long a send over the socket may wait for its answer before it goes
/// over HTTP instead (with the same bytes: the server answers a repeat with
/// the number it gave).
const LIVE_ANSWER: Duration = Duration::from_secs(5);

/// Takes the socket's queue away when the connection ends, however it ends:
/// sends waiting on it then go over HTTP.
struct Unregister<'a>(&'a LiveSends);

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        if let Ok(mut sends) = self.0.lock() {
            *sends = None;
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const LAST_BACKOFF: Duration = Duration::from_secs(5);

/// Whether the receiver is still listening.
enum Listening {
    Yes,
    No,
}

impl Client {
    /// Starts the live stream of decoded events. It reconnects after drops
    /// and resumes where this device left off; drop the receiver to stop it.
    pub fn live(self: &Arc<Self>) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(256);
        let client = self.clone();
        tokio::spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            // The last message seq each circle delivered, across reconnects.
            let mut delivered = HashMap::new();
            loop {
                match client.stream_once(&tx, &mut backoff, &mut delivered).await {
                    Ok(Listening::No) => return,
                    Ok(Listening::Yes) | Err(_) => {}
                }
                if tx.send(Event::Disconnected).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(LAST_BACKOFF);
            }
        });
        rx
    }

    /// Sends a message over the live socket, when one is open: its answer,
    /// or `None` when there is no socket or no answer came in time (the
    /// caller then sends over HTTP, with the same bytes).
    pub(crate) async fn send_live(
        &self,
        circle: &CircleId,
        message: &SendMessage,
        envelope: &Envelope,
    ) -> Option<Result<Accepted>> {
        let queue = self.live_sends.lock().ok()?.clone()?;
        let (answer, answered) = oneshot::channel();
        let send = LiveSend {
            circle: circle.clone(),
            message: message.clone(),
            envelope: envelope.clone(),
            answer,
        };
        queue.send(send).await.ok()?;
        match tokio::time::timeout(LIVE_ANSWER, answered).await {
            Ok(Ok(result)) => Some(result),
            _ => None,
        }
    }

    /// This device's own message at `seq`, as its sender stored it. The
    /// sending process stores it just after the server answers, which may be
    /// a moment after the entry reaches the stream: wait briefly for it.
    async fn own_message(&self, circle: &CircleId, seq: u64) -> Result<Option<Message>> {
        // Up to two seconds: a sending process on a busy machine.
        for _ in 0..80 {
            let circle = circle.clone();
            if let Some(message) = self.with(move |s| s.store.history_at(&circle, seq)).await? {
                return Ok(Some(message));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Ok(None)
    }

    /// One connection, until it drops.
    async fn stream_once(
        &self,
        tx: &mpsc::Sender<Event>,
        backoff: &mut Duration,
        delivered: &mut HashMap<CircleId, u64>,
    ) -> Result<Listening> {
        let api = self.authorized().await?;
        let (me, _) = self.signing_key().await?;
        let mut request = api.api.ws_url(STREAM).into_client_request()?;
        let header = format!("Bearer {}", api.token)
            .parse()
            .map_err(|_| ClientError::Unexpected("an access token that is no header value"))?;
        request.headers_mut().insert("authorization", header);
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;

        let cursors = self
            .with(|s| s.store.circles())
            .await?
            .into_iter()
            .map(|(circle_id, after)| Cursor { circle_id, after })
            .collect();
        let resume = serde_json::to_string(&ClientFrame::Resume { cursors })?;
        socket.send(Frame::text(resume)).await?;

        // The outbox's sends, once the socket is ready; answers by request id.
        let (queue, mut sends) = mpsc::channel::<LiveSend>(64);
        let mut queue = Some(queue);
        let _unregister = Unregister(&self.live_sends);
        let mut in_flight: HashMap<u64, LiveSend> = HashMap::new();
        let mut next_request = 0_u64;

        loop {
            let message = tokio::select! {
                // The app stopped listening: the socket closes now, not when
                // the next event finds no one to take it (until then it
                // would go on processing what arrives, unseen).
                () = tx.closed() => return Ok(Listening::No),
                message = socket.next() => match message {
                    Some(message) => message,
                    None => break,
                },
                Some(send) = sends.recv() => {
                    next_request += 1;
                    let frame = serde_json::to_string(&ClientFrame::Send {
                        request_id: next_request,
                        circle_id: send.circle.clone(),
                        message: send.message.clone(),
                    })?;
                    socket.send(Frame::text(frame)).await?;
                    in_flight.insert(next_request, send);
                    continue;
                }
            };
            let Ok(Frame::Text(text)) = message else {
                match message {
                    Ok(Frame::Close(_)) | Err(_) => break,
                    _ => continue,
                }
            };
            let Ok(frame) = serde_json::from_str::<ServerFrame>(text.as_str()) else {
                continue;
            };
            let event = match frame {
                ServerFrame::Ready { generation, .. } => {
                    *backoff = FIRST_BACKOFF;
                    self.generation_seen(&generation).await?;
                    // Back online: what waited in the outbox goes now (what
                    // still cannot go stays pending for the next chance).
                    if let Err(err) = self.flush_outbox().await
                        && !err.is_retryable()
                    {
                        return Err(err);
                    }
                    // From now on the outbox sends over this socket.
                    if let (Some(queue), Ok(mut live)) = (queue.take(), self.live_sends.lock()) {
                        *live = Some(queue);
                    }
                    vec![Event::Connected]
                }
                ServerFrame::Entry { circle_id, entry } => {
                    let seq = entry.seq;
                    let own = entry.sender == me && entry.kind == EntryKind::Application;
                    // Our own send over this socket whose answer is still
                    // on its way: its sender has not stored it yet, but we
                    // know what it said.
                    let sent_here = own
                        .then(|| {
                            in_flight.values().find(|s| {
                                s.circle == circle_id
                                    && s.message.ciphertext.as_slice()
                                        == entry.ciphertext.as_slice()
                            })
                        })
                        .flatten()
                        .map(|s| Message {
                            seq,
                            sender: me,
                            envelope: s.envelope.clone(),
                            received_at: entry.received_at,
                        });
                    let caught = match self.process_entries(&circle_id, vec![entry], true).await {
                        // Out of step: catching up rejoins and reads on.
                        Err(ClientError::OutOfStep) => self.catch_up(&circle_id).await?,
                        other => other?,
                    };
                    self.drive(caught.follow_ups).await?;
                    let ack = serde_json::to_string(&ClientFrame::Ack {
                        circle_id: circle_id.clone(),
                        seq,
                    })?;
                    socket.send(Frame::text(ack)).await?;
                    let mut messages = caught.messages;
                    if let Some(sent) = sent_here {
                        messages.push(sent);
                    } else if own {
                        // Sent by this device (this process or another one on
                        // the same data directory): it cannot decrypt its own
                        // message, but the sender stored it.
                        messages.extend(self.own_message(&circle_id, seq).await?);
                    }
                    // A message reaches the app once per stream, however
                    // many ways it came (a reconnect's replay, a sync that
                    // raced); processing noted it shown.
                    let seen = delivered.entry(circle_id.clone()).or_insert(0);
                    messages.retain(|m| m.seq > *seen);
                    if let Some(last) = messages.iter().map(|m| m.seq).max() {
                        *seen = last;
                    }
                    messages
                        .into_iter()
                        .map(|message| Event::Message {
                            circle_id: circle_id.clone(),
                            message,
                        })
                        .collect()
                }
                ServerFrame::Welcome { .. } => self
                    .accept_welcomes()
                    .await?
                    .into_iter()
                    .map(|circle_id| Event::Joined { circle_id })
                    .collect(),
                ServerFrame::Removed { circle_id } => {
                    // Noted as gone (history kept); the notice is the event.
                    self.gone(&circle_id, Gone::Removed).await?;
                    Vec::new()
                }
                ServerFrame::JoinRequest {
                    circle_id,
                    join_request,
                } => vec![Event::JoinRequest {
                    circle_id,
                    request_id: join_request.join_request_id,
                }],
                ServerFrame::DeviceLinked => {
                    // A new device of this account: bring it into our
                    // circles now (the notices say so).
                    self.add_my_other_devices().await?;
                    Vec::new()
                }
                ServerFrame::Sent {
                    request_id,
                    accepted,
                    ..
                } => {
                    if let Some(send) = in_flight.remove(&request_id) {
                        let _ = send.answer.send(Ok(accepted));
                    }
                    Vec::new()
                }
                ServerFrame::Error {
                    request_id: Some(request_id),
                    error,
                } => {
                    if let Some(send) = in_flight.remove(&request_id) {
                        let refused = ClientError::Api {
                            status: error.code.status(),
                            body: error,
                        };
                        let _ = send.answer.send(Err(refused));
                    }
                    Vec::new()
                }
                ServerFrame::Error { .. } => Vec::new(),
            };
            for event in self.take_notices().into_iter().chain(event) {
                if tx.send(event).await.is_err() {
                    return Ok(Listening::No);
                }
            }
        }
        Ok(Listening::Yes)
    }
}
