//! Wake-ups for live sockets. When something a socket may care about
//! happens — a circle's log grew, a device got a Welcome or was revoked — the
//! server publishes an [`Event`], and the hub hands it to the sockets that
//! follow that circle or belong to that device, and to no other.
//!
//! Events are hints: a socket that hears one reads from the database after
//! its own cursor, so a missed or repeated event never causes a gap or a
//! duplicate. The one exception is the common case made cheap: an
//! [`Event::Appended`] carries a committed application message as a
//! ready-made frame, encoded once, and a socket whose cursor sits just before
//! it sends those bytes without touching the database. Any other cursor reads
//! the log as before.
//!
//! Within a node the hub is a registry of mailboxes (a bounded queue per
//! socket); a socket that falls a whole mailbox behind is told it lagged and
//! catches up from the database. Across nodes on one PostgreSQL database,
//! events travel as `NOTIFY` and every node's listener republishes them
//! locally (see `Operations::notify`/`listen`). Payloads carry only ids.

use crate::logins::LiveLogins;
use crate::storage::Notice;
use bytestring::ByteString;
use hearth_protocol::circles::LogEntry;
use hearth_protocol::stream::ServerFrame;
use hearth_protocol::{CircleId, DeviceId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Something happened that sockets may need to look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The circle's log, roster or join requests changed.
    Circle(CircleId),
    /// An application message was committed to a circle's log.
    Appended(Arc<Appended>),
    /// The device got a Welcome, or its logins changed (revoked, logged out).
    Device(DeviceId),
    /// Another device joined this device's account.
    Linked(DeviceId),
    /// This node is shutting down: sockets close so clients reconnect
    /// elsewhere. Never sent to other nodes.
    Shutdown,
}

/// A committed application message, ready to go out on sockets.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Appended {
    /// Its circle.
    pub circle: CircleId,
    /// Its sequence number.
    pub seq: i64,
    /// The `entry` server frame, encoded once for every socket.
    pub frame: ByteString,
}

impl Appended {
    /// A committed entry as the frame every socket of its circle gets.
    pub fn new(circle: CircleId, entry: LogEntry) -> Result<Self, serde_json::Error> {
        let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
        let frame = serde_json::to_string(&ServerFrame::Entry {
            circle_id: circle.clone(),
            entry,
        })?;
        Ok(Self {
            circle,
            seq,
            frame: frame.into(),
        })
    }
}

impl Event {
    /// What other nodes are told of this event (an appended message travels
    /// as its circle: other nodes read it from the database); nothing for a
    /// shutdown, which is this node's alone.
    pub fn notice(&self) -> Option<Notice> {
        match self {
            Self::Circle(id) => Some(Notice::Circle(id.clone())),
            Self::Appended(entry) => Some(Notice::Circle(entry.circle.clone())),
            Self::Device(id) => Some(Notice::Device(*id)),
            Self::Linked(id) => Some(Notice::Linked(*id)),
            Self::Shutdown => None,
        }
    }

    fn circle(&self) -> Option<&CircleId> {
        match self {
            Self::Circle(id) => Some(id),
            Self::Appended(entry) => Some(&entry.circle),
            Self::Device(_) | Self::Linked(_) | Self::Shutdown => None,
        }
    }
}

/// What a socket hears.
#[derive(Debug)]
pub enum Heard {
    /// An event for it.
    Event(Event),
    /// Its mailbox overflowed and events were dropped: it must look at
    /// everything it follows.
    Lagged,
}

/// The node's registry of sockets and what they follow, and the logins it
/// last found live (forgotten as their devices' events pass).
#[derive(Debug, Clone)]
pub struct Hub {
    registry: Arc<Mutex<Registry>>,
    capacity: usize,
    logins: LiveLogins,
}

#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    mailboxes: HashMap<u64, Mailbox>,
    circles: HashMap<CircleId, HashSet<u64>>,
    devices: HashMap<DeviceId, HashSet<u64>>,
}

#[derive(Debug)]
struct Mailbox {
    queue: Arc<Queue>,
    device: DeviceId,
    circles: HashSet<CircleId>,
}

/// What waits for one socket: a plain deque under a lock, which holds no
/// memory while it is empty (an idle socket's usual state: a channel would
/// keep a block of slots per socket), and a wake-up for the socket's task.
#[derive(Debug, Default)]
struct Queue {
    events: Mutex<VecDeque<Event>>,
    ready: Notify,
    lagged: AtomicBool,
}

impl Queue {
    fn events(&self) -> MutexGuard<'_, VecDeque<Event>> {
        // A deque holds nothing a panicking holder could leave half-made.
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Mailbox {
    /// Queues `event`, unless `capacity` events wait already.
    fn post(&self, event: Event, capacity: usize) {
        {
            let mut events = self.queue.events();
            // A full mailbox drops what comes (the socket will read
            // everything anyway), except the order to close.
            if events.len() >= capacity && !matches!(event, Event::Shutdown) {
                self.queue.lagged.store(true, Ordering::Release);
            } else {
                events.push_back(event);
            }
        }
        self.queue.ready.notify_one();
    }
}

impl Hub {
    /// A hub whose sockets may fall `capacity` events behind before they are
    /// told they lagged (and then resynchronise everything).
    pub fn new(capacity: usize) -> Self {
        Self {
            registry: Arc::default(),
            capacity: capacity.max(1),
            logins: LiveLogins::default(),
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // The registry holds no invariant a panicking holder could break
        // half-way that matters more than keeping sockets served.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A mailbox for a socket of `device`: it hears the device's events and
    /// shutdown at once, and a circle's events once it follows the circle.
    pub fn subscribe(&self, device: DeviceId) -> Subscription {
        let queue = Arc::new(Queue::default());
        let mut registry = self.registry();
        let id = registry.next_id;
        registry.next_id += 1;
        registry.devices.entry(device).or_default().insert(id);
        registry.mailboxes.insert(
            id,
            Mailbox {
                queue: queue.clone(),
                device,
                circles: HashSet::new(),
            },
        );
        Subscription {
            follower: Follower {
                hub: self.clone(),
                id,
            },
            queue,
        }
    }

    /// The logins this node last found live.
    pub fn logins(&self) -> &LiveLogins {
        &self.logins
    }

    /// Notices from other nodes may have been lost (the listener's
    /// connection dropped): nothing remembered about logins is trusted.
    /// Every socket on the node is told it lagged, so each reads everything
    /// it follows from its own cursors (a message another node appended
    /// meanwhile would otherwise wait for the circle's next one).
    pub fn missed_notices(&self) {
        self.logins.forget_all();
        for mailbox in self.registry().mailboxes.values() {
            mailbox.queue.lagged.store(true, Ordering::Release);
            mailbox.queue.ready.notify_one();
        }
    }

    /// Hands an event to the sockets it concerns on this node.
    pub fn publish(&self, event: Event) {
        if let Event::Device(device) = &event {
            self.logins.forget_device(*device);
        }
        let registry = self.registry();
        let post = |id: &u64| {
            if let Some(mailbox) = registry.mailboxes.get(id) {
                mailbox.post(event.clone(), self.capacity);
            }
        };
        match &event {
            Event::Shutdown => registry.mailboxes.keys().for_each(post),
            Event::Device(device) | Event::Linked(device) => registry
                .devices
                .get(device)
                .into_iter()
                .flatten()
                .for_each(post),
            _ => {
                if let Some(circle) = event.circle() {
                    registry
                        .circles
                        .get(circle)
                        .into_iter()
                        .flatten()
                        .for_each(post);
                }
            }
        }
    }

    /// Whether any socket on this node follows the circle.
    pub fn followed(&self, circle: &CircleId) -> bool {
        self.registry().circles.contains_key(circle)
    }

    /// Whether any socket of the device is open on this node.
    pub fn connected(&self, device: &DeviceId) -> bool {
        self.registry().devices.contains_key(device)
    }

    /// Every device with a socket open on this node.
    pub fn connected_devices(&self) -> Vec<DeviceId> {
        self.registry().devices.keys().copied().collect()
    }
}

/// One socket's mailbox; dropping it unregisters the socket.
#[derive(Debug)]
pub struct Subscription {
    follower: Follower,
    queue: Arc<Queue>,
}

/// Changes which circles a socket follows (while its [`Subscription`] waits
/// for the next event).
#[derive(Debug, Clone)]
pub struct Follower {
    hub: Hub,
    id: u64,
}

impl Follower {
    /// Follows exactly these circles from now on.
    pub fn follow_only<'a>(&self, circles: impl IntoIterator<Item = &'a CircleId>) {
        let wanted: HashSet<CircleId> = circles.into_iter().cloned().collect();
        let mut guard = self.hub.registry();
        let registry = &mut *guard;
        let Some(mailbox) = registry.mailboxes.get_mut(&self.id) else {
            return;
        };
        for gone in mailbox.circles.difference(&wanted) {
            unlink(&mut registry.circles, gone, self.id);
        }
        for new in wanted.difference(&mailbox.circles) {
            registry
                .circles
                .entry(new.clone())
                .or_default()
                .insert(self.id);
        }
        mailbox.circles = wanted;
    }

    /// Follows one more circle.
    pub fn follow(&self, circle: &CircleId) {
        let mut guard = self.hub.registry();
        let registry = &mut *guard;
        if let Some(mailbox) = registry.mailboxes.get_mut(&self.id)
            && mailbox.circles.insert(circle.clone())
        {
            registry
                .circles
                .entry(circle.clone())
                .or_default()
                .insert(self.id);
        }
    }

    /// Stops following a circle.
    pub fn unfollow(&self, circle: &CircleId) {
        let mut guard = self.hub.registry();
        let registry = &mut *guard;
        if let Some(mailbox) = registry.mailboxes.get_mut(&self.id)
            && mailbox.circles.remove(circle)
        {
            unlink(&mut registry.circles, circle, self.id);
        }
    }
}

impl Subscription {
    /// A handle that changes what this socket follows.
    pub fn follower(&self) -> Follower {
        self.follower.clone()
    }

    /// The next thing heard. Cancel-safe: nothing is taken from the
    /// mailbox until it is returned.
    pub async fn recv(&mut self) -> Heard {
        loop {
            if self.queue.lagged.swap(false, Ordering::Acquire) {
                return Heard::Lagged;
            }
            if let Some(event) = self.queue.events().pop_front() {
                return Heard::Event(event);
            }
            // Posting pushes, then notifies (a permit is kept when nobody
            // waits), so nothing posted after the look above is missed.
            self.queue.ready.notified().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Follower { hub, id } = &self.follower;
        let mut guard = hub.registry();
        let registry = &mut *guard;
        if let Some(mailbox) = registry.mailboxes.remove(id) {
            for circle in &mailbox.circles {
                unlink(&mut registry.circles, circle, *id);
            }
            if let Some(ids) = registry.devices.get_mut(&mailbox.device) {
                ids.remove(id);
                if ids.is_empty() {
                    registry.devices.remove(&mailbox.device);
                }
            }
        }
    }
}

fn unlink<K: std::hash::Hash + Eq>(index: &mut HashMap<K, HashSet<u64>>, key: &K, id: u64) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circle(n: u8) -> CircleId {
        CircleId::from_bytes(vec![n; 16]).unwrap()
    }

    #[test]
    fn other_nodes_hear_of_every_event_but_a_shutdown() {
        let device: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        assert_eq!(
            Event::Circle(circle(1)).notice(),
            Some(Notice::Circle(circle(1)))
        );
        assert_eq!(Event::Device(device).notice(), Some(Notice::Device(device)));
        assert_eq!(Event::Linked(device).notice(), Some(Notice::Linked(device)));
        assert_eq!(Event::Shutdown.notice(), None);
    }

    #[tokio::test]
    async fn a_socket_hears_its_device_and_the_circles_it_follows_and_nothing_else() {
        let hub = Hub::new(8);
        let (sam, kai): (DeviceId, DeviceId) = (
            "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap(),
            "7f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap(),
        );
        let mut sams = hub.subscribe(sam);
        sams.follower().follow_only([&circle(1), &circle(2)]);
        hub.publish(Event::Circle(circle(3)));
        hub.publish(Event::Device(kai));
        hub.publish(Event::Circle(circle(2)));
        hub.publish(Event::Device(sam));
        let heard = |h: Heard| match h {
            Heard::Event(event) => event,
            other => panic!("expected an event, heard {other:?}"),
        };
        assert_eq!(heard(sams.recv().await), Event::Circle(circle(2)));
        assert_eq!(heard(sams.recv().await), Event::Device(sam));
        sams.follower().unfollow(&circle(2));
        hub.publish(Event::Circle(circle(2)));
        hub.publish(Event::Shutdown);
        assert_eq!(heard(sams.recv().await), Event::Shutdown);
        drop(sams);
        let registry = hub.registry();
        assert!(registry.mailboxes.is_empty(), "the socket is unregistered");
        assert!(registry.circles.is_empty() && registry.devices.is_empty());
    }

    #[tokio::test]
    async fn a_socket_that_falls_a_mailbox_behind_is_told_it_lagged() {
        let hub = Hub::new(2);
        let device: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        let mut socket = hub.subscribe(device);
        socket.follower().follow(&circle(1));
        for _ in 0..3 {
            hub.publish(Event::Circle(circle(1)));
        }
        assert!(matches!(socket.recv().await, Heard::Lagged));
        assert!(matches!(socket.recv().await, Heard::Event(_)));
        assert!(matches!(socket.recv().await, Heard::Event(_)));
        // Even a full mailbox takes the order to close.
        for _ in 0..3 {
            hub.publish(Event::Circle(circle(1)));
        }
        hub.publish(Event::Shutdown);
        assert!(matches!(socket.recv().await, Heard::Lagged));
        let mut last = None;
        for _ in 0..3 {
            last = Some(socket.recv().await);
        }
        assert!(matches!(last, Some(Heard::Event(Event::Shutdown))));
    }

    #[tokio::test]
    async fn when_notices_were_missed_every_socket_looks_again_even_a_quiet_one() {
        let hub = Hub::new(8);
        let sam: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        let kai: DeviceId = "0b0c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        let mut quiet = hub.subscribe(sam);
        quiet.follower().follow(&circle(1));
        let mut busy = hub.subscribe(kai);
        busy.follower().follow(&circle(2));
        hub.publish(Event::Circle(circle(2)));
        hub.missed_notices();
        let heard = tokio::time::timeout(std::time::Duration::from_secs(1), quiet.recv()).await;
        assert!(matches!(heard, Ok(Heard::Lagged)), "{heard:?}");
        assert!(matches!(busy.recv().await, Heard::Lagged));
    }
}
