//! `hearth-client`: the SDK a Hearth app embeds.
//!
//! A [`Client`] is bound to a server URL and a data directory. It owns the
//! device's Ed25519 key (which is also its MLS signature key), its login,
//! its MLS state and its decrypted history, all on disk in that directory, and
//! turns "create a circle", "invite Sam", "send this", "what's new" into the
//! right API calls with real MLS.
//!
//! Layers: `api` is HTTP transport and `endpoints` every path the SDK calls;
//! `store` is the client's own SQLite and `provider` openmls with persistent
//! storage; the operations are `impl Client` blocks, one module per concern
//! (`login`, `key_packages`, `circles`, `invites`, `commits`, `sync`,
//! `messages`, `content`, `profiles`, `repair`, `live`, and the calendar:
//! `schedule`, `calendar`, `snapshot`). Processing the log
//! returns follow-up actions (`sync::FollowUp`) that one driver runs, so no
//! operation calls back into another. Everything that touches the disk runs
//! on tokio's blocking pool, so no async task ever blocks.
#![deny(missing_docs)]

mod api;
mod calendar;
mod call;
mod circles;
mod commits;
mod content;
mod durable;
mod endpoints;
mod error;
mod invites;
mod key_packages;
mod lease;
mod live;
mod login;
mod messages;
mod notifications;
mod outbox;
mod profiles;
mod provider;
mod push;
mod repair;
mod schedule;
mod snapshot;
mod store;
mod sync;
mod vault;
mod video;

pub use calendar::{AgreementView, Calendar, CheckIn, Rsvp, Session};
pub use call::{CallKeys, KeyChange, LIVEKIT_KEY_INDICES, LiveKitKey};
pub use circles::CirclePolicy;
pub use error::{ClientError, Result};
pub use invites::{InviteLink, JoinRequestView};
pub use live::Event;
pub use messages::Message;
pub use notifications::{Notification, NotificationKind, Notifications};
pub use outbox::{Outgoing, OutgoingState};
pub use push::Woken;
pub use schedule::Reminder;
pub use sync::Synced;
pub use video::Call;

use api::Api;
use hearth_protocol::CircleId;
use openmls::prelude::{GroupId, MlsGroup, OpenMlsProvider as _};
use provider::Provider;
use secrecy::SecretBox;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::Store;

/// How many times an operation is rebuilt after `stale_epoch` before it
/// gives up with [`ClientError::Contended`].
const ATTEMPTS: usize = 8;

/// What the blocking pool works on: the client's store (its own tables and
/// openmls's, in one database), the media key handles of calls in progress,
/// and the lease that keeps other processes on the same data directory out
/// while a step runs.
struct Inner {
    store: Store,
    crypto: openmls_rust_crypto::RustCrypto,
    calls: call::CallRegistry,
    lease: lease::Lease,
    /// How long a step waits for another process to give the lease back.
    lease_wait: std::time::Duration,
}

/// What a step sees: the store, openmls over the same database connection
/// (so the step's MLS changes and the store's commit together), and the
/// calls.
struct State<'a> {
    store: &'a Store,
    provider: Provider<'a>,
    calls: &'a mut call::CallRegistry,
}

/// A Hearth client: one device, one data directory, one server.
pub struct Client {
    api: Api,
    state: Arc<Mutex<Inner>>,
    dir: PathBuf,
    /// One token refresh at a time: a replayed refresh token ends the login.
    refresh: tokio::sync::Mutex<()>,
    /// What happened that the user should hear about (removals, rejoins,
    /// unusable Welcomes, devices added), until taken.
    notices: Mutex<Vec<Event>>,
    /// One sender of queued messages at a time, so each goes out once and
    /// in order.
    sending: tokio::sync::Mutex<()>,
    /// The live socket's queue of sends, while one is open.
    live_sends: live::LiveSends,
    /// The server's log generation as last compared with the stored one:
    /// the same answer again costs no disk step.
    generation: Mutex<Option<String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens (creating) the data directory and binds the client to `server`
    /// (for example `http://127.0.0.1:8080`). Nothing is sealed at rest: for
    /// a laptop's CLI and tests; apps use [`Client::open_encrypted`].
    pub async fn open(server: &str, dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(server, dir.as_ref(), None).await
    }

    /// Opens (creating) the data directory with the key its secrets are
    /// sealed with (32 bytes from the platform's key store). A directory
    /// created with another key answers [`ClientError::WrongKey`]; one
    /// created without a key, [`ClientError::NotEncrypted`].
    pub async fn open_encrypted(
        server: &str,
        dir: impl AsRef<Path>,
        key: SecretBox<[u8; 32]>,
    ) -> Result<Self> {
        Self::open_with(server, dir.as_ref(), Some(key)).await
    }

    async fn open_with(server: &str, dir: &Path, key: Option<SecretBox<[u8; 32]>>) -> Result<Self> {
        let dir = dir.to_path_buf();
        let opened = dir.clone();
        let state = tokio::task::spawn_blocking(move || -> Result<Inner> {
            std::fs::create_dir_all(&opened)?;
            let mut lease = lease::Lease::open(&opened)?;
            // Migrations and the first MLS tables are written under the
            // lease too: two processes may open a new directory at once.
            lease.take(lease::WAIT)?;
            let store = Store::open(&opened, key.as_ref());
            lease.give_back()?;
            Ok(Inner {
                store: store?,
                crypto: openmls_rust_crypto::RustCrypto::default(),
                calls: call::CallRegistry::default(),
                lease,
                lease_wait: lease::WAIT,
            })
        })
        .await
        .map_err(|_| ClientError::Task)??;
        Ok(Self {
            api: Api::new(server)?,
            state: Arc::new(Mutex::new(state)),
            dir,
            refresh: tokio::sync::Mutex::new(()),
            notices: Mutex::new(Vec::new()),
            generation: Mutex::new(None),
            sending: tokio::sync::Mutex::new(()),
            live_sends: Mutex::new(None),
        })
    }

    /// What happened since the last call that the user should hear about:
    /// removals, rejoins that lost messages, Welcomes that could not be used,
    /// devices this device added. The live stream delivers these as events.
    pub fn take_notices(&self) -> Vec<Event> {
        self.notices
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    fn notify(&self, event: Event) {
        if let Ok(mut notices) = self.notices.lock() {
            notices.push(event);
        }
    }

    /// How long a step waits for another process on the same data
    /// directory (the app, or its notification extension) to finish its
    /// own before answering [`ClientError::Busy`]. Twelve seconds unless
    /// set: longer than a lease lasts, so a process that was killed while
    /// holding it is always outwaited.
    pub async fn set_busy_wait(&self, wait: std::time::Duration) -> Result<()> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            state.lock().map_err(|_| ClientError::Task)?.lease_wait = wait;
            Ok(())
        })
        .await
        .map_err(|_| ClientError::Task)?
    }

    /// Runs `f` as one step on the blocking pool: one transaction, under the
    /// data directory's lease (see `lease`).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = state.lock().map_err(|_| ClientError::Task)?;
            let inner = &mut *guard;
            let wait = inner.lease_wait;
            inner.lease.take(wait)?;
            let done = step(inner, f);
            inner.lease.give_back()?;
            done
        })
        .await
        .map_err(|_| ClientError::Task)?
    }

    /// Holds the lease across more than one step (a token refresh, whose
    /// request must not be made twice by two processes), until dropped.
    async fn hold_lease(&self) -> Result<LeaseHeld> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut inner = state.lock().map_err(|_| ClientError::Task)?;
            let wait = inner.lease_wait;
            inner.lease.take(wait)
        })
        .await
        .map_err(|_| ClientError::Task)??;
        Ok(LeaseHeld(self.state.clone()))
    }
}

/// The body of a step: `f` in one transaction — openmls's writes (a message
/// key spent, a ratchet advanced, a commit merged) and the store's (the
/// plaintext, the cursor, the outbox's bytes) commit together or not at all,
/// so a process killed mid-step leaves the state as it was before the step;
/// one that fails rolls back likewise. What committed is made durable
/// before the SDK acts on it (see `durable`).
fn step<T>(inner: &mut Inner, f: impl FnOnce(&mut State<'_>) -> Result<T>) -> Result<T> {
    // openmls's codec seals with the store's vault during the step.
    let _vault = vault::enter(inner.store.vault());
    inner.store.begin()?;
    let done = f(&mut State {
        store: &inner.store,
        provider: Provider::new(inner.store.connection(), &inner.crypto),
        calls: &mut inner.calls,
    });
    match &done {
        Ok(_) => inner.store.commit()?,
        Err(_) => inner.store.roll_back()?,
    }
    inner.store.make_durable()?;
    done
}

/// A hold on the lease beyond one step; given back when dropped.
struct LeaseHeld(Arc<Mutex<Inner>>);

impl Drop for LeaseHeld {
    fn drop(&mut self) {
        // A short write; a failure leaves the lease to run out by itself.
        if let Ok(mut state) = self.0.lock() {
            let _ = state.lease.give_back();
        }
    }
}

/// Now, in unix seconds.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `N` bytes from the OS.
fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| ClientError::Unexpected("no randomness"))?;
    Ok(bytes)
}

/// The circle's MLS group. A circle this device left or was removed from has
/// none (its group is dropped then), and says which.
fn load(s: &State<'_>, circle: &CircleId) -> Result<MlsGroup> {
    let group = MlsGroup::load(
        s.provider.storage(),
        &GroupId::from_slice(circle.as_bytes()),
    )
    .map_err(hearth_protocol::mls::failed("loading the circle's group"))?;
    match group {
        Some(group) => Ok(group),
        None => Err(match s.store.gone(circle)? {
            Some(store::Gone::Removed) => ClientError::RemovedFromCircle,
            Some(store::Gone::Left) => ClientError::LeftCircle,
            None => ClientError::UnknownCircle,
        }),
    }
}
