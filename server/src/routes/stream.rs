//! `GET /v1/stream`: live delivery over a WebSocket (frames in
//! `hearth_protocol::stream`).
//!
//! A socket keeps a cursor per circle. Whenever the hub says a circle
//! changed, it reads the log after its cursor and sends what it finds, so
//! ordering and exactly-once delivery come from the database, not from the
//! events. When the login ends (revocation, logout, account deletion, a
//! replayed refresh token) the handler publishes the device's event and the
//! socket closes at once, on every node; a check once a minute is only a
//! safety net for an event lost between nodes. A device removed from a
//! circle learns it at the removing commit and gets nothing more of it.

use crate::auth::Authenticated;
use crate::delivery::{DeliveryError, Sent};
use crate::error::ApiError;
use crate::hub::{Appended, Event, Follower, Heard, Subscription};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session as WsSession};
use futures_util::StreamExt as _;
use hearth_protocol::circles::{JoinRequest, PendingWelcome, Role};
use hearth_protocol::stream::{ClientFrame, ServerFrame};
use hearth_protocol::{CircleId, ErrorBody};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PING_EVERY: Duration = Duration::from_secs(15);
const PONG_TIMEOUT: Duration = Duration::from_secs(45);
/// Sockets learn that their login ended from events (revocation, logout,
/// account deletion, a replayed refresh token); this slow check is only a
/// safety net for an event lost between nodes.
const CHECK_LOGIN_EVERY: Duration = Duration::from_secs(60);
const RESUME_TIMEOUT: Duration = Duration::from_secs(30);
/// A socket that could not read because the database was away tries again
/// after this long, doubling up to [`RETRY_AT_MOST`].
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_AT_MOST: Duration = Duration::from_secs(10);

/// Opens the live stream. Authenticate with the `Authorization` header, then
/// send a `resume` frame.
#[utoipa::path(get, path = "/v1/stream", tag = "circles", security(("bearer" = [])), responses(
    (status = 101, description = "Switching to the WebSocket protocol; frames are JSON (see ClientFrame and ServerFrame)"),
    (status = 400, description = "Not a WebSocket upgrade", body = ErrorBody),
    (status = 401, description = "Not authenticated", body = ErrorBody)))]
pub async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, ApiError> {
    let (response, socket, messages) = actix_ws::handle(&req, body)
        .map_err(|_| ApiError::BadRequest("expected a WebSocket upgrade".into()))?;
    let messages = messages
        .max_frame_size(state.config.limits.json_body_bytes)
        .aggregate_continuations()
        .max_continuation_size(state.config.limits.json_body_bytes);
    let events = state.hub.subscribe(auth.device_id);
    // Live now: no node wakes this device until its last socket closes.
    if let Some(push) = &state.push {
        push.socket_opened(auth.device_id).await;
    }
    let socket = Socket {
        follows: events.follower(),
        state: state.into_inner(),
        auth,
        socket,
        cursors: HashMap::new(),
        facilitating: HashSet::new(),
        sent_welcomes: HashSet::new(),
        sent_requests: HashSet::new(),
        behind: None,
    };
    actix_web::rt::spawn(socket.run(messages, events));
    Ok(response)
}

/// Why a socket stops.
enum Stop {
    /// The client went away or the connection failed.
    Gone,
    /// The login ended (revoked device, logout, deleted account).
    LoginEnded,
    /// No pong for too long.
    Silent,
    /// The client never resumed.
    NoResume,
    /// The server is shutting down.
    Shutdown,
}

struct Socket {
    state: Arc<AppState>,
    /// Which circles' events reach this socket: kept equal to `cursors`.
    follows: Follower,
    auth: Authenticated,
    socket: WsSession,
    cursors: HashMap<CircleId, i64>,
    facilitating: HashSet<CircleId>,
    sent_welcomes: HashSet<Uuid>,
    sent_requests: HashSet<Uuid>,
    /// What the socket owes its client because a read failed (the database
    /// was away), and when it tries again.
    behind: Option<Behind>,
}

/// A read the socket owes. Nothing else would make it look again: the
/// event that asked for the read is spent, and a quiet circle may not
/// have another for hours.
struct Behind {
    /// A `resume` that could not be answered (its cursors), or else a catch
    /// up on everything followed.
    resume: Option<HashMap<CircleId, u64>>,
    retry_at: tokio::time::Instant,
    wait: Duration,
    /// A read failed since the last try began.
    failed: bool,
}

type Step = Result<(), Stop>;

impl Socket {
    async fn run(
        mut self,
        mut messages: impl futures_util::Stream<Item = Result<AggregatedMessage, ProtocolError>> + Unpin,
        mut events: Subscription,
    ) {
        let mut ping = tokio::time::interval(PING_EVERY);
        let mut check = tokio::time::interval_at(
            tokio::time::Instant::now() + CHECK_LOGIN_EVERY,
            CHECK_LOGIN_EVERY,
        );
        let resume_by = tokio::time::Instant::now() + RESUME_TIMEOUT;
        let mut last_pong = Instant::now();
        let mut resumed = false;
        let stop = loop {
            let step = tokio::select! {
                message = messages.next() => match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        self.on_frame(&text, &mut resumed).await
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        self.socket.pong(&bytes).await.map_err(|_| Stop::Gone)
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {
                        last_pong = Instant::now();
                        Ok(())
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        self.refuse(None, ApiError::BadRequest("frames are JSON text".into())).await
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => Err(Stop::Gone),
                },
                heard = events.recv(), if resumed => match heard {
                    Heard::Event(Event::Appended(entry)) => self.on_appended(&entry).await,
                    Heard::Event(Event::Circle(circle)) => self.on_circle(&circle).await,
                    Heard::Event(Event::Device(_)) => match self.check_login().await {
                        Ok(()) => self.deliver_welcomes().await,
                        Err(stop) => Err(stop),
                    },
                    Heard::Event(Event::Linked(_)) => self.send(&ServerFrame::DeviceLinked).await,
                    Heard::Event(Event::Shutdown) => Err(Stop::Shutdown),
                    // Fell a whole mailbox behind: catch up on everything.
                    Heard::Lagged => self.catch_up().await,
                },
                _ = ping.tick() => {
                    if last_pong.elapsed() > PONG_TIMEOUT {
                        Err(Stop::Silent)
                    } else {
                        self.socket.ping(b"").await.map_err(|_| Stop::Gone)
                    }
                }
                _ = tokio::time::sleep_until(resume_by), if !resumed => Err(Stop::NoResume),
                _ = check.tick() => self.check_login().await,
                _ = sleep_until_retry(self.behind.as_ref()), if self.behind.is_some() => {
                    self.retry().await
                }
            };
            if let Err(stop) = step {
                break stop;
            }
        };
        let reason = match stop {
            Stop::Gone => None,
            Stop::LoginEnded => Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("login ended".into()),
            }),
            Stop::Silent => Some(CloseReason {
                code: CloseCode::Away,
                description: Some("no pong".into()),
            }),
            Stop::NoResume => Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("send resume first".into()),
            }),
            Stop::Shutdown => Some(CloseReason {
                code: CloseCode::Restart,
                description: Some("server restarting; reconnect".into()),
            }),
        };
        let _ = self.socket.close(reason).await;
        drop(events);
        if let Some(push) = &self.state.push {
            push.socket_closed(self.auth.device_id);
        }
    }

    async fn send(&mut self, frame: &ServerFrame) -> Step {
        let text = serde_json::to_string(frame).map_err(|_| Stop::Gone)?;
        self.socket.text(text).await.map_err(|_| Stop::Gone)
    }

    async fn refuse(&mut self, request_id: Option<u64>, error: ApiError) -> Step {
        if let ApiError::Storage(cause) = &error {
            tracing::error!(error = %cause, "socket storage failure");
        }
        let frame = ServerFrame::Error {
            request_id,
            error: error.body(),
        };
        self.send(&frame).await
    }

    /// A read failed. A database that is away (or failing) makes the socket
    /// owe its client the read and try again later, telling the client
    /// once (`unavailable`); anything else is refused as usual.
    async fn fall_behind(
        &mut self,
        resume: Option<HashMap<CircleId, u64>>,
        error: ApiError,
    ) -> Step {
        if !matches!(
            error,
            ApiError::Unavailable | ApiError::StorageFull | ApiError::Storage(_)
        ) {
            return self.refuse(None, error).await;
        }
        let first = self.behind.is_none();
        let behind = self.behind.get_or_insert(Behind {
            resume: None,
            retry_at: tokio::time::Instant::now(),
            wait: RETRY_FIRST,
            failed: true,
        });
        behind.failed = true;
        // A resume still owed stays owed: it sets up the cursors.
        if resume.is_some() {
            behind.resume = resume;
        }
        behind.retry_at = tokio::time::Instant::now() + behind.wait;
        behind.wait = (behind.wait * 2).min(RETRY_AT_MOST);
        if first {
            self.refuse(None, error).await
        } else {
            Ok(())
        }
    }

    /// Tries the owed read again; it owes it anew if it fails.
    async fn retry(&mut self) -> Step {
        let Some(behind) = self.behind.as_mut() else {
            return Ok(());
        };
        let resume = behind.resume.take();
        // Still behind while it tries (a failure backs off further and does
        // not tell the client again); done only when nothing failed.
        behind.failed = false;
        match resume {
            Some(asked) => self.resume_from(asked).await?,
            None => self.catch_up().await?,
        }
        if self.behind.as_ref().is_some_and(|behind| !behind.failed) {
            self.behind = None;
        }
        Ok(())
    }

    async fn check_login(&mut self) -> Step {
        match self
            .state
            .storage
            .live_login(self.auth.login_id, self.auth.device_id)
            .await
        {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(Stop::LoginEnded),
            // A database hiccup is not the client's fault; try again next tick.
            Err(err) => {
                tracing::warn!(error = %err, "socket login check failed");
                Ok(())
            }
        }
    }

    async fn on_frame(&mut self, text: &str, resumed: &mut bool) -> Step {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(_) => {
                return self
                    .refuse(None, ApiError::BadRequest("not a client frame".into()))
                    .await;
            }
        };
        match frame {
            ClientFrame::Resume { cursors } => {
                self.resume(cursors).await?;
                *resumed = true;
                Ok(())
            }
            ClientFrame::Send {
                request_id,
                circle_id,
                message,
            } => {
                let sent = self
                    .state
                    .delivery
                    .append(self.auth.device_id, &circle_id, message)
                    .await;
                let (accepted, repeated) = match sent {
                    Ok(Sent::New(accepted)) => (accepted, false),
                    Ok(Sent::Repeated(accepted)) => (accepted, true),
                    Err(err) => return self.refuse(Some(request_id), err.into()).await,
                };
                self.send(&ServerFrame::Sent {
                    request_id,
                    accepted,
                    repeated,
                })
                .await
            }
            ClientFrame::Ack { circle_id, seq } => {
                let acknowledged = self
                    .state
                    .delivery
                    .acknowledge(self.auth.device_id, &circle_id, seq)
                    .await;
                match acknowledged {
                    Ok(()) => Ok(()),
                    Err(err) => self.refuse(None, err.into()).await,
                }
            }
        }
    }

    async fn resume(&mut self, cursors: Vec<hearth_protocol::stream::Cursor>) -> Step {
        let asked: HashMap<CircleId, u64> = cursors
            .into_iter()
            .map(|c| (c.circle_id, c.after))
            .collect();
        self.resume_from(asked).await
    }

    async fn resume_from(&mut self, asked: HashMap<CircleId, u64>) -> Step {
        let circles = match self.state.storage.device_circles(self.auth.device_id).await {
            Ok(circles) => circles,
            Err(err) => return self.fall_behind(Some(asked), err.into()).await,
        };
        self.cursors.clear();
        self.facilitating.clear();
        for circle in &circles {
            let Some(me) = circle.member(self.auth.device_id) else {
                continue;
            };
            let cursor = asked.get(&circle.id).map_or(me.acked_seq, |after| {
                i64::try_from(*after).unwrap_or(i64::MAX)
            });
            self.cursors.insert(circle.id.clone(), cursor);
            if me.role == Role::Facilitator {
                self.facilitating.insert(circle.id.clone());
            }
        }
        self.follows.follow_only(self.cursors.keys());
        let ready = ServerFrame::Ready {
            circles: circles.into_iter().map(|c| c.id).collect(),
            generation: self.state.delivery.generation().to_owned(),
        };
        self.send(&ready).await?;
        self.catch_up().await
    }

    async fn catch_up(&mut self) -> Step {
        let circles: Vec<CircleId> = self.cursors.keys().cloned().collect();
        for circle in circles {
            self.on_circle(&circle).await?;
        }
        self.deliver_welcomes().await
    }

    /// A message just committed on this node: when it is the next entry
    /// this socket owes, its frame goes out as encoded, without a read.
    /// Otherwise (a gap, or a circle it does not follow) the log decides.
    async fn on_appended(&mut self, entry: &Appended) -> Step {
        match self.cursors.get(&entry.circle).copied() {
            Some(cursor) if cursor.checked_add(1) == Some(entry.seq) => {
                self.socket
                    .text(entry.frame.clone())
                    .await
                    .map_err(|_| Stop::Gone)?;
                // In place: no copy of the circle id per delivery.
                if let Some(cursor) = self.cursors.get_mut(&entry.circle) {
                    *cursor = entry.seq;
                }
                Ok(())
            }
            Some(cursor) if cursor >= entry.seq => Ok(()),
            Some(_) => self.on_circle(&entry.circle).await,
            None => Ok(()),
        }
    }

    /// Sends what is new in a circle: log entries after the cursor and, to
    /// facilitators, join requests not yet sent.
    async fn on_circle(&mut self, circle: &CircleId) -> Step {
        let Some(mut cursor) = self.cursors.get(circle).copied() else {
            return Ok(());
        };
        loop {
            let read = self
                .state
                .delivery
                .read(
                    self.auth.device_id,
                    circle,
                    u64::try_from(cursor).unwrap_or_default(),
                    None,
                )
                .await;
            let page = match read {
                Ok(page) => page,
                Err(DeliveryError::NotFound) => {
                    self.cursors.remove(circle);
                    self.follows.unfollow(circle);
                    self.facilitating.remove(circle);
                    return self
                        .send(&ServerFrame::Removed {
                            circle_id: circle.clone(),
                        })
                        .await;
                }
                Err(err) => return self.fall_behind(None, err.into()).await,
            };
            for entry in page.entries {
                cursor = i64::try_from(entry.seq).unwrap_or(i64::MAX);
                let frame = ServerFrame::Entry {
                    circle_id: circle.clone(),
                    entry,
                };
                self.send(&frame).await?;
                self.cursors.insert(circle.clone(), cursor);
            }
            if !page.more {
                break;
            }
        }
        if self.facilitating.contains(circle) {
            let requests = match self.state.storage.join_requests(circle).await {
                Ok(requests) => requests,
                Err(err) => return self.fall_behind(None, err.into()).await,
            };
            for request in requests {
                if self.sent_requests.insert(request.id) {
                    let frame = ServerFrame::JoinRequest {
                        circle_id: circle.clone(),
                        join_request: JoinRequest {
                            join_request_id: request.id,
                            device_ids: request.device_ids,
                            note: request.note.map(Into::into),
                            created_at: request.created_at,
                        },
                    };
                    self.send(&frame).await?;
                }
            }
        }
        Ok(())
    }

    /// Sends Welcomes not yet sent, and starts delivering their circles from
    /// the commit that added this device.
    async fn deliver_welcomes(&mut self) -> Step {
        let welcomes = match self.state.storage.welcomes(self.auth.device_id).await {
            Ok(welcomes) => welcomes,
            Err(err) => return self.fall_behind(None, err.into()).await,
        };
        for welcome in welcomes {
            if !self.sent_welcomes.insert(welcome.id) {
                continue;
            }
            self.cursors
                .entry(welcome.circle_id.clone())
                .or_insert(welcome.seq);
            self.follows.follow(&welcome.circle_id);
            let frame = ServerFrame::Welcome {
                welcome: PendingWelcome {
                    welcome_id: welcome.id,
                    circle_id: welcome.circle_id.clone(),
                    seq: u64::try_from(welcome.seq).unwrap_or_default(),
                    epoch: u64::try_from(welcome.epoch).unwrap_or_default(),
                    welcome: welcome.data.into(),
                },
            };
            self.send(&frame).await?;
            self.on_circle(&welcome.circle_id).await?;
        }
        Ok(())
    }
}

/// Sleeps until the owed read is due (never, when nothing is owed).
async fn sleep_until_retry(behind: Option<&Behind>) {
    match behind {
        Some(behind) => tokio::time::sleep_until(behind.retry_at).await,
        None => std::future::pending().await,
    }
}
