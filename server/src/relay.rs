//! The cross-node path, one way: what other nodes said through the
//! database ([`Notice`] lines from [`Operations::listen`]) becomes events on
//! this node's hub. Storage hears, the relay reads, the hub delivers; storage
//! never calls the hub.
//!
//! [`Operations::listen`]: crate::storage::Operations::listen

use crate::hub::{Appended, Event, Hub};
use crate::storage::{Notice, Storage};
use std::sync::Arc;

/// The most entries one notice is read for on the sockets' behalf.
const RELAYED_AT_MOST: i64 = 512;

/// Passes what other nodes say to this node's sockets. Messages appended
/// elsewhere are read here once, for every socket that follows their circle,
/// and go out as frames; if that read fails, the sockets read for
/// themselves.
pub async fn relay(
    mut heard: tokio::sync::mpsc::UnboundedReceiver<String>,
    storage: Arc<dyn Storage>,
    hub: Hub,
) {
    while let Some(text) = heard.recv().await {
        match Notice::parse(&text) {
            Some(Notice::Circle(circle)) => hub.publish(Event::Circle(circle)),
            Some(Notice::Device(device)) => hub.publish(Event::Device(device)),
            Some(Notice::Linked(device)) => hub.publish(Event::Linked(device)),
            Some(Notice::Missed) => hub.missed_notices(),
            Some(Notice::Appended {
                circle,
                first,
                last,
            }) => {
                if !hub.followed(&circle) {
                    continue;
                }
                let count = last.saturating_sub(first).saturating_add(1);
                // A batch appends at most a few hundred; anything larger is
                // left to the sockets' own paged reads.
                if count > RELAYED_AT_MOST {
                    hub.publish(Event::Circle(circle));
                    continue;
                }
                match storage.log_entries(&circle, first - 1, count).await {
                    Ok(records) => {
                        let complete = i64::try_from(records.len()).ok() == Some(count);
                        for record in records {
                            match Appended::new(circle.clone(), record.into_entry()) {
                                Ok(appended) => hub.publish(Event::Appended(Arc::new(appended))),
                                Err(_) => hub.publish(Event::Circle(circle.clone())),
                            }
                        }
                        // Something was already gone (or not yet there):
                        // let each socket look for itself.
                        if !complete {
                            hub.publish(Event::Circle(circle));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not read entries another node appended");
                        hub.publish(Event::Circle(circle));
                    }
                }
            }
            None => {}
        }
    }
}
