//! Which logins this node last found live, so that a request need not ask
//! the database on every call.
//!
//! Every authenticated request must know that its login still exists and its
//! device is not revoked; asking the database each time costs a round trip
//! per request (on SQLite, a hop to a reader thread whose page cache every
//! write has just emptied). Here the answer is remembered for a short while,
//! and forgotten the moment this node hears that the device's logins changed
//! ([`crate::hub::Event::Device`]: revocation, logout, account deletion, a
//! replayed refresh token — published on this node and, through
//! PostgreSQL, on every other). When the cross-node listener may have missed
//! notices (its connection dropped), everything is forgotten. The time limit
//! is only a safety net for a notice lost some other way.
//!
//! A lookup that races a revocation cannot put a stale answer back: each
//! forgetting bumps a generation, and an answer read from the database is
//! kept only if no forgetting happened since the read began.

use crate::storage::{LiveLogin, LoginId};
use hearth_protocol::DeviceId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an answer is trusted without an event: a safety net only.
const TRUSTED_FOR: Duration = Duration::from_secs(10);
/// The most logins remembered; past it, the oldest answers are dropped.
const CAPACITY: usize = 200_000;

/// The node's remembered live logins (cheap to clone: shared).
#[derive(Debug, Clone, Default)]
pub struct LiveLogins {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: u64,
    known: HashMap<LoginId, Known>,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    login: LiveLogin,
    checked: Instant,
}

/// Where a lookup began: hand it back with the database's answer.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl LiveLogins {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Nothing here is left half-changed by a panicking holder.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The remembered answer for `login` of `device`, or a ticket to read it
    /// from the database with and [`LiveLogins::remember`] afterwards.
    pub fn lookup(&self, login: LoginId, device: DeviceId) -> Result<LiveLogin, Ticket> {
        let inner = self.inner();
        match inner.known.get(&login) {
            Some(known)
                if known.login.device_id == device && known.checked.elapsed() < TRUSTED_FOR =>
            {
                Ok(known.login)
            }
            _ => Err(Ticket(inner.generation)),
        }
    }

    /// Keeps what the database said, unless something was forgotten since
    /// `ticket` was taken (the answer may predate it).
    pub fn remember(&self, ticket: Ticket, login: LoginId, live: LiveLogin) {
        let mut inner = self.inner();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.known.len() >= CAPACITY {
            inner
                .known
                .retain(|_, known| known.checked.elapsed() < TRUSTED_FOR);
            if inner.known.len() >= CAPACITY {
                inner.known.clear();
            }
        }
        inner.known.insert(
            login,
            Known {
                login: live,
                checked: Instant::now(),
            },
        );
    }

    /// The device's logins changed: ask the database again.
    pub fn forget_device(&self, device: DeviceId) {
        let mut inner = self.inner();
        inner.generation = inner.generation.wrapping_add(1);
        inner
            .known
            .retain(|_, known| known.login.device_id != device);
    }

    /// Notices may have been missed: ask the database again about everyone.
    pub fn forget_all(&self) {
        let mut inner = self.inner();
        inner.generation = inner.generation.wrapping_add(1);
        inner.known.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::AccountId;
    use uuid::Uuid;

    fn login() -> (LoginId, LiveLogin) {
        (
            LoginId(Uuid::new_v4()),
            LiveLogin {
                device_id: DeviceId::from_uuid(Uuid::new_v4()),
                account_id: AccountId::from_uuid(Uuid::new_v4()),
            },
        )
    }

    #[test]
    fn an_answer_is_kept_until_its_device_changes() {
        let logins = LiveLogins::default();
        let (id, live) = login();
        let (other_id, other) = login();
        let Err(ticket) = logins.lookup(id, live.device_id) else {
            panic!("nothing is known at first");
        };
        logins.remember(ticket, id, live);
        let Err(ticket) = logins.lookup(other_id, other.device_id) else {
            panic!("only what was remembered is known");
        };
        logins.remember(ticket, other_id, other);
        assert_eq!(logins.lookup(id, live.device_id).ok(), Some(live));
        // A token naming another device than its login's is not vouched for.
        assert!(logins.lookup(id, other.device_id).is_err());
        logins.forget_device(live.device_id);
        assert!(logins.lookup(id, live.device_id).is_err());
        assert_eq!(logins.lookup(other_id, other.device_id).ok(), Some(other));
        logins.forget_all();
        assert!(logins.lookup(other_id, other.device_id).is_err());
    }

    #[test]
    fn an_answer_read_before_a_revocation_is_not_kept() {
        let logins = LiveLogins::default();
        let (id, live) = login();
        let Err(ticket) = logins.lookup(id, live.device_id) else {
            panic!("nothing is known at first");
        };
        // The database said "live"; the device is revoked before the answer
        // is remembered.
        logins.forget_device(live.device_id);
        logins.remember(ticket, id, live);
        assert!(logins.lookup(id, live.device_id).is_err());
    }
}
