//! What nodes sharing one database tell each other through it (PostgreSQL
//! `NOTIFY` payload lines; a single SQLite node says nothing): ids and
//! numbers only, never content. Storage writes the [`Notice::Appended`] line
//! itself, inside the transaction that appends; everything else is said by
//! the layers above through [`super::Operations::notify`].

use hearth_protocol::{CircleId, DeviceId};

/// One line between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The circle's log, roster or join requests changed.
    Circle(CircleId),
    /// The device got a Welcome, or its logins changed.
    Device(DeviceId),
    /// Another device joined this device's account.
    Linked(DeviceId),
    /// Application messages `first..=last` were appended to a circle: read
    /// them once, and hand them to the node's sockets as frames.
    Appended {
        /// The circle.
        circle: CircleId,
        /// The first new number.
        first: i64,
        /// The last new number.
        last: i64,
    },
    /// Said by a node's own listener, never by another node: its connection
    /// dropped, and notices sent meanwhile are lost.
    Missed,
}

impl Notice {
    /// The text of the line.
    pub fn encode(&self) -> String {
        match self {
            Self::Circle(id) => format!("c:{id}"),
            Self::Device(id) => format!("d:{id}"),
            Self::Linked(id) => format!("l:{id}"),
            Self::Appended {
                circle,
                first,
                last,
            } => format!("a:{circle}:{first}:{last}"),
            Self::Missed => "m:".to_owned(),
        }
    }

    /// Parses [`Notice::encode`]'s output; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "c" => rest.parse().ok().map(Self::Circle),
            "d" => rest.parse().ok().map(Self::Device),
            "l" => rest.parse().ok().map(Self::Linked),
            "m" => rest.is_empty().then_some(Self::Missed),
            "a" => {
                let mut parts = rest.split(':');
                let circle = parts.next()?.parse().ok()?;
                let first = parts.next()?.parse().ok()?;
                let last = parts.next()?.parse().ok()?;
                (parts.next().is_none() && first <= last).then_some(Self::Appended {
                    circle,
                    first,
                    last,
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_survives_its_text_and_nothing_else_parses() {
        let circle = CircleId::from_bytes(vec![1; 16]).unwrap();
        let device: DeviceId = "6f1c2a4e-8a3b-4c5d-9e0f-1a2b3c4d5e6f".parse().unwrap();
        for notice in [
            Notice::Circle(circle.clone()),
            Notice::Device(device),
            Notice::Linked(device),
            Notice::Appended {
                circle,
                first: 7,
                last: 9,
            },
            Notice::Missed,
        ] {
            assert_eq!(Notice::parse(&notice.encode()), Some(notice));
        }
        for bad in [
            "x:1",
            "a:",
            "a:x:1:2",
            "a:AQEBAQEBAQEBAQEBAQEBAQ:2:1",
            "a:AQEBAQEBAQEBAQEBAQEBAQ:1:2:3",
            "m:x",
        ] {
            assert_eq!(Notice::parse(bad), None, "{bad}");
        }
    }
}
