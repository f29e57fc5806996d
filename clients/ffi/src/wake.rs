//! The one call a phone's notification extension makes: it opens the data
//! directory itself (the extension is a process of its own), looks once,
//! and says what to show — or that it cannot look now.

use crate::convert::ShownNotification;
use crate::error::HearthError;
use crate::run;
use hearth_client::{Client, ClientError};
use std::time::Duration;

/// What a push wake found.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Wake {
    /// Show these (none: the app had shown everything already). With
    /// `complete` false the time ran out first; the rest waits for the next
    /// wake or the app.
    Show {
        /// What to show, oldest first within each circle.
        items: Vec<ShownNotification>,
        /// Whether every circle was read.
        complete: bool,
    },
    /// The key store (or the data directory's files) cannot be read yet: a
    /// phone restarted and not unlocked since. Nothing was read or written;
    /// show the push's placeholder.
    Locked,
    /// The app held the data directory for the whole time allowed. Nothing
    /// was changed; show the placeholder (the app shows the messages).
    Busy,
}

/// What a Notification Service Extension (iOS) or a push worker (Android)
/// calls when a push arrives: opens `data_dir` with `key` — `None` when the
/// platform's key store is locked, which answers [`Wake::Locked`] without
/// touching the directory — catches up every circle in one request within
/// `within_ms`, and returns what to show that neither this call nor the app
/// has shown before. Safe while the app runs on the same directory: one of
/// them at a time advances the state, and neither decrypts what the other
/// already did.
#[uniffi::export]
pub async fn notifications_on_wake(
    server_url: String,
    data_dir: String,
    key: Option<Vec<u8>>,
    within_ms: u64,
) -> Result<Wake, HearthError> {
    let Some(key) = key else {
        return Ok(Wake::Locked);
    };
    let key: [u8; 32] = key.try_into().map_err(|_| HearthError::InvalidInput {
        detail: "the key is 32 bytes".into(),
    })?;
    let key = secrecy::SecretBox::new(Box::new(key));
    let within = Duration::from_millis(within_ms);
    run(async move {
        let client = match Client::open_encrypted(&server_url, &data_dir, key).await {
            Ok(client) => client,
            Err(err) if unreadable(&err) => return Ok(Wake::Locked),
            Err(err) => return Err(err.into()),
        };
        client.set_busy_wait(within).await?;
        match client.notifications(within).await {
            Ok(found) => Ok(Wake::Show {
                items: found
                    .items
                    .into_iter()
                    .map(ShownNotification::from)
                    .collect(),
                complete: found.complete,
            }),
            Err(ClientError::Busy) => Ok(Wake::Busy),
            Err(err) => Err(err.into()),
        }
    })
    .await
}

/// Whether opening failed because the files cannot be read yet (iOS keeps a
/// file protected until the first unlock unreadable, even to the app).
fn unreadable(err: &ClientError) -> bool {
    match err {
        ClientError::Io(io) => io.kind() == std::io::ErrorKind::PermissionDenied,
        ClientError::Store(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
            failure.code,
            rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied
        ),
        _ => false,
    }
}
