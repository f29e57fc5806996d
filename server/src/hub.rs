//! Wake-ups for live sockets. When something a socket may care about
//! happens — a circle's log grew, a device got a Welcome or was revoked — the
//! handler publishes an [`Event`]. Events are hints: a socket that hears one
//! reads from the database after its own cursor, so a missed or repeated
//! event never causes a gap or a duplicate.
//!
//! Within a node the hub is a broadcast channel. Across nodes on one
//! PostgreSQL database, events also travel as `NOTIFY` and every node's
//! listener republishes them locally (see `Operations::notify`/`listen`).
//! Payloads carry only ids.

use hearth_protocol::{CircleId, DeviceId};
use tokio::sync::broadcast;

/// Something happened that sockets may need to look at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Event {
    /// The circle's log, roster or join requests changed.
    Circle(CircleId),
    /// The device got a Welcome, or its logins changed (revoked, logged out).
    Device(DeviceId),
    /// This node is shutting down: sockets close so clients reconnect
    /// elsewhere. Never sent to other nodes.
    Shutdown,
}

impl Event {
    /// The text form used in `NOTIFY` payloads.
    pub fn encode(&self) -> String {
        match self {
            Self::Circle(id) => format!("c:{id}"),
            Self::Device(id) => format!("d:{id}"),
            Self::Shutdown => "s:".to_owned(),
        }
    }

    /// Parses [`Event::encode`]'s output.
    pub fn decode(text: &str) -> Option<Self> {
        let (kind, id) = text.split_once(':')?;
        match kind {
            "c" => id.parse().ok().map(Self::Circle),
            "d" => id.parse().ok().map(Self::Device),
            _ => None,
        }
    }
}

/// The node's broadcast of events.
#[derive(Debug, Clone)]
pub struct Hub {
    sender: broadcast::Sender<Event>,
}

impl Hub {
    /// A hub whose subscribers may fall `capacity` events behind before they
    /// are told they lagged (and then resynchronise everything).
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
        }
    }

    /// Listens to every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Publishes an event to this node's sockets.
    pub fn publish(&self, event: Event) {
        // No receiver means no open socket: nothing to wake.
        let _ = self.sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_text() {
        let circle: CircleId = "AAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
        let device: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        for event in [Event::Circle(circle), Event::Device(device)] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        assert_eq!(Event::decode("x:1"), None);
    }
}
