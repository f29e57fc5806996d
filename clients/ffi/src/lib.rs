//! `hearth-ffi`: the Hearth SDK (`hearth-client`) for phone apps, through
//! UniFFI. Kotlin, Swift and Python are generated from this library
//! (`scripts/bindings`); the generated sources are not committed.
//!
//! Thin wrappers: every operation is one call into the SDK, with ids and
//! times converted to what an app shows (base64url circle ids, hyphenated
//! device ids, unix seconds) and errors to [`HearthError`], which keeps the
//! server's stable codes. The SDK's futures run on a Tokio runtime this
//! crate owns ([`runtime`]), so the app's own executor (Kotlin coroutines,
//! Swift concurrency, asyncio) only awaits them. Live events reach the app
//! through an [`EventListener`] it implements; the [`Listening`] handle
//! stops them when stopped or dropped. The device's files are sealed under
//! a key the app supplies ([`HearthClient::open`]).
#![deny(missing_docs)]

mod calendar;
mod call;
mod convert;
mod error;
mod wake;

pub use calendar::{Agreement, CheckIn, CheckInReply, Person, SeriesPlan, SessionView};
pub use call::MediaCall;
pub use convert::{
    Circle, Device, Invite, JoinRequest, LiveEvent, Member, Message, OutgoingMessage, PastCircle,
    PushHealth, PushRegistration, ShownNotification, Woken,
};
pub use error::HearthError;
pub use wake::{Wake, notifications_on_wake};

use hearth_client::Client;
use std::sync::{Arc, LazyLock, Mutex};

uniffi::setup_scaffolding!();

/// The runtime every SDK future runs on: the SDK uses Tokio's timers,
/// sockets and blocking pool, which the app's executor does not provide.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hearth")
            .enable_all()
            .build()
            .unwrap_or_else(|err| {
                // Without threads there is nothing an app can do; say why.
                panic!("hearth-ffi cannot start its runtime: {err}")
            })
    });
    &RUNTIME
}

/// Runs `future` on [`runtime`] and hands its output to whichever executor
/// awaits this.
async fn run<T, F>(future: F) -> Result<T, HearthError>
where
    F: Future<Output = Result<T, HearthError>> + Send + 'static,
    T: Send + 'static,
{
    runtime()
        .spawn(future)
        .await
        .map_err(|_| HearthError::Internal {
            detail: "a background task failed".into(),
        })?
}

/// Where a device keeps its state (a data directory) and which server it
/// speaks to: everything an app does goes through one of these.
#[derive(uniffi::Object)]
pub struct HearthClient {
    inner: Arc<Client>,
}

impl std::fmt::Debug for HearthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HearthClient")
    }
}

/// The runtime hop and the circle id, written once for every operation.
impl HearthClient {
    /// Runs `work` with the SDK client on [`runtime`].
    async fn with<T, W, F>(&self, work: W) -> Result<T, HearthError>
    where
        W: FnOnce(Arc<Client>) -> F,
        F: Future<Output = Result<T, HearthError>> + Send + 'static,
        T: Send + 'static,
    {
        run(work(self.inner.clone())).await
    }

    /// Runs `work` on the circle the app names by `circle_id` (refused as
    /// invalid input when it does not parse).
    async fn in_circle<T, W, F>(&self, circle_id: String, work: W) -> Result<T, HearthError>
    where
        W: FnOnce(Arc<Client>, hearth_protocol::CircleId) -> F + Send + 'static,
        F: Future<Output = Result<T, HearthError>> + Send + 'static,
        T: Send + 'static,
    {
        let client = self.inner.clone();
        run(async move {
            let circle = convert::circle_id(&circle_id)?;
            work(client, circle).await
        })
        .await
    }
}

#[uniffi::export]
impl HearthClient {
    /// Opens (or creates) the client's state in `data_dir`, for the server
    /// at `server_url` (`https://...`). Everything sensitive in it is sealed
    /// under `key`: 32 random bytes the app keeps in the platform's key
    /// store (Android Keystore, iOS Keychain), the same at every open. A
    /// different key is refused with `WrongKey`.
    #[uniffi::constructor]
    pub async fn open(
        server_url: String,
        data_dir: String,
        key: Vec<u8>,
    ) -> Result<Arc<Self>, HearthError> {
        let key: [u8; 32] = key.try_into().map_err(|_| HearthError::InvalidInput {
            detail: "the key is 32 bytes".into(),
        })?;
        let key = secrecy::SecretBox::new(Box::new(key));
        run(async move {
            let client = Client::open_encrypted(&server_url, &data_dir, key).await?;
            Ok(Arc::new(Self {
                inner: Arc::new(client),
            }))
        })
        .await
    }

    /// Registers this device: a new account, or another device of an
    /// existing one when given a link token from `link_token`. Returns the
    /// device id.
    pub async fn register(&self, link_token: Option<String>) -> Result<String, HearthError> {
        self.with(move |client| async move {
            Ok(client.register(link_token.as_deref()).await?.to_string())
        })
        .await
    }

    /// This device's id, once registered.
    pub async fn device_id(&self) -> Result<Option<String>, HearthError> {
        self.with(move |client| async move { Ok(client.device_id().await?.map(|d| d.to_string())) })
            .await
    }

    /// A one-time token another device of this account registers with.
    pub async fn link_token(&self) -> Result<String, HearthError> {
        self.with(move |client| async move { Ok(client.link_token().await?) })
            .await
    }

    /// Enrols this account as a facilitator with a one-time code from the
    /// server's operator; returns when it was enrolled (unix seconds).
    pub async fn enrol_as_facilitator(&self, code: String) -> Result<i64, HearthError> {
        self.with(move |client| async move {
            let status = client.enrol_as_facilitator(&code).await?;
            Ok(status.enrolled_at.unwrap_or_default())
        })
        .await
    }

    /// Brings this account's other devices into every circle this device is
    /// in (after one registered with a link token). Returns those circles.
    pub async fn add_my_other_devices(&self) -> Result<Vec<String>, HearthError> {
        self.with(move |client| async move {
            Ok(client
                .add_my_other_devices()
                .await?
                .iter()
                .map(ToString::to_string)
                .collect())
        })
        .await
    }

    /// The name others see for this member in every circle.
    pub async fn set_display_name(&self, name: String) -> Result<(), HearthError> {
        self.with(move |client| async move { Ok(client.set_display_name(&name).await?) })
            .await
    }

    /// Creates a circle this device facilitates, titled `title`. Returns
    /// its id.
    pub async fn create_circle(&self, title: String) -> Result<String, HearthError> {
        self.with(move |client| async move {
            let circle = client.create_circle().await?;
            client.set_title(&circle, &title).await?;
            Ok(circle.to_string())
        })
        .await
    }

    /// The circles this device is in, with their titles.
    pub async fn circles(&self) -> Result<Vec<Circle>, HearthError> {
        self.with(move |client| async move {
            let mut circles = Vec::new();
            for id in client.circles().await? {
                circles.push(Circle {
                    title: client.title(&id).await?,
                    id: id.to_string(),
                });
            }
            Ok(circles)
        })
        .await
    }

    /// Renames a circle (facilitators).
    pub async fn set_title(&self, circle_id: String, title: String) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.set_title(&circle, &title).await?)
        })
        .await
    }

    /// Who is in the circle, by the MLS group (not the server's word), with
    /// the names they gave.
    pub async fn members(&self, circle_id: String) -> Result<Vec<Member>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let names = client.names(&circle).await?;
            Ok(client
                .members(&circle)
                .await?
                .into_iter()
                .map(|device| Member {
                    device_id: device.to_string(),
                    name: names.get(&device).cloned(),
                })
                .collect())
        })
        .await
    }

    /// An invite link to share out of band (facilitators).
    pub async fn create_invite(&self, circle_id: String) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.create_invite(&circle).await?)
        })
        .await
    }

    /// The circle's invites (facilitators).
    pub async fn invites(&self, circle_id: String) -> Result<Vec<Invite>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client
                .invites(&circle)
                .await?
                .into_iter()
                .map(Invite::from)
                .collect())
        })
        .await
    }

    /// Revokes an invite (facilitators).
    pub async fn revoke_invite(
        &self,
        circle_id: String,
        invite_id: String,
    ) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client
                .revoke_invite(&circle, convert::uuid(&invite_id)?)
                .await?)
        })
        .await
    }

    /// The circles this device was in and no longer is, with their titles
    /// and whether it was removed (rather than left). Their history stays
    /// readable.
    pub async fn past_circles(&self) -> Result<Vec<PastCircle>, HearthError> {
        self.with(move |client| async move {
            let mut circles = Vec::new();
            for (id, removed) in client.past_circles().await? {
                circles.push(PastCircle {
                    title: client.title(&id).await?,
                    id: id.to_string(),
                    removed,
                });
            }
            Ok(circles)
        })
        .await
    }

    /// What happened during the calls since the last time that the person
    /// should hear about (removed from a circle, rejoined after losing
    /// messages, an invitation that could not be opened, other devices
    /// added). The live stream delivers these as events by itself.
    pub fn take_notices(&self) -> Vec<LiveEvent> {
        self.inner
            .take_notices()
            .into_iter()
            .map(|event| LiveEvent::from_sdk(event, &Default::default()))
            .collect()
    }

    /// Revokes another device of this account (a lost phone): signed out at
    /// once and taken out of every circle.
    pub async fn revoke_device(&self, device_id: String) -> Result<(), HearthError> {
        self.with(move |client| async move {
            let device = convert::device_id(&device_id)?;
            Ok(client.revoke_device(device).await?)
        })
        .await
    }

    /// This account's devices.
    pub async fn devices(&self) -> Result<Vec<Device>, HearthError> {
        self.with(move |client| async move {
            Ok(client
                .devices()
                .await?
                .devices
                .into_iter()
                .map(|d| Device {
                    device_id: d.device_id.to_string(),
                    current: d.current,
                    created_at: d.created_at,
                })
                .collect())
        })
        .await
    }

    /// Asks to join with an invite link and an introduction note only the
    /// facilitators can read. Returns the join request's id.
    pub async fn redeem_invite(&self, link: String, note: String) -> Result<String, HearthError> {
        self.with(
            move |client| async move { Ok(client.redeem_invite(&link, &note).await?.to_string()) },
        )
        .await
    }

    /// The circle's pending join requests, notes decrypted (facilitators).
    pub async fn join_requests(&self, circle_id: String) -> Result<Vec<JoinRequest>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client
                .join_requests(&circle)
                .await?
                .into_iter()
                .map(JoinRequest::from)
                .collect())
        })
        .await
    }

    /// Lets the requester in (facilitators).
    pub async fn approve(&self, circle_id: String, request_id: String) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let request = convert::uuid(&request_id)?;
            client.approve(&circle, request).await?;
            Ok(())
        })
        .await
    }

    /// Turns the requester away (facilitators).
    pub async fn decline(&self, circle_id: String, request_id: String) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let request = convert::uuid(&request_id)?;
            Ok(client.decline(&circle, request).await?)
        })
        .await
    }

    /// Joins the circles whose Welcomes wait for this device. Returns them.
    pub async fn accept_welcomes(&self) -> Result<Vec<String>, HearthError> {
        self.with(move |client| async move {
            Ok(client
                .accept_welcomes()
                .await?
                .iter()
                .map(ToString::to_string)
                .collect())
        })
        .await
    }

    /// Removes devices from the circle (facilitators).
    pub async fn remove(
        &self,
        circle_id: String,
        device_ids: Vec<String>,
    ) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let devices = device_ids
                .iter()
                .map(|d| convert::device_id(d))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(client.remove_devices(&circle, &devices).await?)
        })
        .await
    }

    /// Leaves the circle.
    pub async fn leave(&self, circle_id: String) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.leave(&circle).await?)
        })
        .await
    }

    /// Sends a message. Returns its id.
    pub async fn send_text(&self, circle_id: String, text: String) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.send_text(&circle, &text).await?.to_string())
        })
        .await
    }

    /// Messages on their way out (pending or failed), oldest first. A
    /// message the app sent is here until the server has it.
    pub async fn outbox(&self) -> Result<Vec<OutgoingMessage>, HearthError> {
        self.with(move |client| async move {
            Ok(client
                .outbox()
                .await?
                .into_iter()
                .map(OutgoingMessage::from)
                .collect())
        })
        .await
    }

    /// Sends what waits in the outbox (an app calls this when it comes
    /// back online). Returns how many went out.
    pub async fn flush_outbox(&self) -> Result<u64, HearthError> {
        self.with(move |client| async move {
            Ok(u64::try_from(client.flush_outbox().await?).unwrap_or(u64::MAX))
        })
        .await
    }

    /// Sends a failed message again. Returns its sequence number.
    pub async fn retry_outgoing(&self, message_id: String) -> Result<u64, HearthError> {
        self.with(move |client| async move {
            let id = convert::uuid(&message_id)?;
            Ok(client.retry_outgoing(id).await?)
        })
        .await
    }

    /// Drops a message from the outbox.
    pub async fn discard_outgoing(&self, message_id: String) -> Result<(), HearthError> {
        self.with(move |client| async move {
            let id = convert::uuid(&message_id)?;
            Ok(client.discard_outgoing(id).await?)
        })
        .await
    }

    /// Fetches everything new in the circle; returns the new messages.
    pub async fn sync(&self, circle_id: String) -> Result<Vec<Message>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let messages = client.sync(&circle).await?;
            let names = client.names(&circle).await?;
            Ok(messages
                .iter()
                .map(|m| Message::from_sdk(m, &names))
                .collect())
        })
        .await
    }

    /// The circle's history on this device, oldest first.
    pub async fn history(&self, circle_id: String) -> Result<Vec<Message>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let messages = client.history(&circle).await?;
            let names = client.names(&circle).await?;
            Ok(messages
                .iter()
                .map(|m| Message::from_sdk(m, &names))
                .collect())
        })
        .await
    }

    /// The circle's epoch authenticator (hex): members who compare it out
    /// of band know they share one group, with no one in the middle.
    pub async fn epoch_authenticator(&self, circle_id: String) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let bytes = client.epoch_authenticator(&circle).await?;
            Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
        })
        .await
    }

    /// Registers where this device is woken while the app sleeps.
    pub async fn set_push_target(
        &self,
        target: PushRegistration,
    ) -> Result<PushHealth, HearthError> {
        self.with(move |client| async move {
            let target = target.into_target()?;
            Ok(client.set_push_target(&target).await?.into())
        })
        .await
    }

    /// This device's push target and whether it still works.
    pub async fn push_status(&self) -> Result<Option<PushHealth>, HearthError> {
        self.with(
            move |client| async move { Ok(client.push_status().await?.map(PushHealth::from)) },
        )
        .await
    }

    /// Stops push for this device.
    pub async fn remove_push_target(&self) -> Result<(), HearthError> {
        self.with(move |client| async move { Ok(client.remove_push_target().await?) })
            .await
    }

    /// What a notification extension or push worker calls on a wake: one
    /// sync for every circle within `within_ms`, then what to show.
    pub async fn notifications(
        &self,
        within_ms: u64,
    ) -> Result<Vec<ShownNotification>, HearthError> {
        self.with(move |client| async move {
            let shown = client
                .notifications(std::time::Duration::from_millis(within_ms))
                .await?;
            Ok(shown
                .items
                .into_iter()
                .map(ShownNotification::from)
                .collect())
        })
        .await
    }

    /// What the app calls when a push wakes it.
    pub async fn on_wake(&self) -> Result<Woken, HearthError> {
        self.with(move |client| async move { Ok(client.on_wake().await?.into()) })
            .await
    }

    /// Starts the live stream: events go to `listener` (on a thread of this
    /// library's) until the returned handle is stopped or dropped.
    pub fn listen(&self, listener: Arc<dyn EventListener>) -> Arc<Listening> {
        let client = self.inner.clone();
        let task = runtime().spawn(async move {
            let mut events = client.live();
            while let Some(event) = events.recv().await {
                let names = match convert::event_circle(&event) {
                    Some(circle) => client.names(circle).await.unwrap_or_default(),
                    None => Default::default(),
                };
                listener.on_event(LiveEvent::from_sdk(event, &names));
            }
        });
        Arc::new(Listening {
            task: Mutex::new(Some(task)),
        })
    }
}

/// What an app implements to hear live events.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    /// One event. Called on a thread of this library's: hand it to the UI
    /// thread yourself.
    fn on_event(&self, event: LiveEvent);
}

/// A running live stream. `stop`, or dropping it (Kotlin's `close`, which
/// every object has), stops the stream.
#[derive(Debug, uniffi::Object)]
pub struct Listening {
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[uniffi::export]
impl Listening {
    /// Stops the stream: after an event being delivered now, none follows.
    pub fn stop(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.stop();
    }
}
