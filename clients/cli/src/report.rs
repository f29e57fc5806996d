//! What the CLI tells people: failures as one line saying what went wrong
//! and what to do next (with `--json`, one JSON object with a stable code),
//! and the SDK's notices (removals, rejoins, devices added). Never a
//! backtrace, an internal URL or an MLS error name.

use hearth_client::{ClientError, Event};
use hearth_protocol::ErrorCode;
use serde_json::json;

/// A failure, for people and for scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A stable code: the server's when it refused, otherwise the CLI's own
    /// (`unreachable`, `not_registered`, `removed_from_circle`, ...).
    pub code: String,
    /// One sentence: what went wrong and what to do.
    pub message: String,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// Prints it on stderr: a line, or one JSON object of the same shape as
    /// the server's error bodies, `{"code": ..., "message": ...}`.
    pub fn print(&self, as_json: bool) {
        if as_json {
            eprintln!("{}", json!({ "code": self.code, "message": self.message }));
        } else {
            eprintln!("hearth: {}", self.message);
        }
    }
}

/// Said of a failed send whose message waits in the outbox.
#[derive(Debug)]
pub struct MessageKept;

impl std::fmt::Display for MessageKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the message is kept")
    }
}

/// What `err` means to the person at the keyboard. `server` is the address
/// they gave (not the URL of whatever request failed).
pub fn describe(err: &anyhow::Error, server: &str) -> Failure {
    let mut failure = describe_error(err, server);
    if err.downcast_ref::<MessageKept>().is_some() {
        failure.message.push_str(
            "; your message is kept and goes out with your next `hearth read` or `hearth outbox`",
        );
    }
    failure
}

fn describe_error(err: &anyhow::Error, server: &str) -> Failure {
    let Some(client) = err.downcast_ref::<ClientError>() else {
        return Failure::new("invalid_input", err.to_string());
    };
    match client {
        ClientError::Network(_) => Failure::new(
            "unreachable",
            format!(
                "cannot reach the Hearth server at {server}: is it running? (choose another with \
                 --server or HEARTH_SERVER)"
            ),
        ),
        ClientError::Stream(_) => Failure::new(
            "unreachable",
            format!("the live connection to {server} broke; run the command again"),
        ),
        ClientError::Api { body, .. } => refused(body.code, &body.message),
        ClientError::NotRegistered => Failure::new(
            "not_registered",
            "this profile has no device yet: run `hearth register`",
        ),
        ClientError::UnknownCircle => Failure::new(
            "not_in_circle",
            "this device is not in that circle (`hearth circle list` shows yours; after an \
             approval, `hearth status` picks up the invitation)",
        ),
        ClientError::RemovedFromCircle => Failure::new(
            "removed_from_circle",
            "you were removed from that circle; its earlier messages stay readable with \
             `hearth read`",
        ),
        ClientError::LeftCircle => Failure::new(
            "left_circle",
            "you left that circle; to come back, ask its facilitator for a new invite",
        ),
        ClientError::NotFacilitator => Failure::new(
            "not_facilitator",
            "only a facilitator of this circle may do that",
        ),
        ClientError::Contended => Failure::new(
            "contended",
            "the circle kept changing while this ran; nothing was half done, try again",
        ),
        ClientError::BadInviteLink => Failure::new(
            "bad_invite_link",
            "that is not a Hearth invite link (they look like hearth:invite/hit_…#…)",
        ),
        ClientError::NoKeyPackages => Failure::new(
            "no_key_packages",
            "their device has nothing to be added with yet: it publishes some the next time it \
             runs `hearth status`; then try again",
        ),
        ClientError::UnknownJoinRequest => Failure::new(
            "unknown_join_request",
            "no such join request (`hearth requests <circle>` lists them)",
        ),
        ClientError::InvalidSchedule(why) => {
            Failure::new("invalid_schedule", format!("not a valid schedule: {why}"))
        }
        ClientError::NoSuchSession => Failure::new(
            "no_such_session",
            "that series has no session on that date (`hearth sessions <circle>` lists them, \
             with their series ids and dates)",
        ),
        ClientError::NoSuchCheckIn => Failure::new(
            "no_such_check_in",
            "no check-in prompt with that id (`hearth check-in show <circle>` lists them)",
        ),
        ClientError::InvalidCheckIn(why) => {
            Failure::new("invalid_check_in", format!("not a valid reply: {why}"))
        }
        ClientError::NotInCircle => Failure::new(
            "not_a_member",
            "someone named is not in this circle (`hearth members <circle>` lists who is)",
        ),
        ClientError::OutOfStep | ClientError::Mls(_) => Failure::new(
            "out_of_step",
            "this device could not process the circle's encryption; `hearth read <circle>` \
             repairs a device that fell out of step (messages sent meanwhile are lost to it)",
        ),
        ClientError::Locked | ClientError::WrongKey | ClientError::NotEncrypted => Failure::new(
            "wrong_key",
            "this profile's data is sealed with a key this command does not have",
        ),
        ClientError::Store(_) | ClientError::Io(_) => Failure::new(
            "local_storage",
            format!(
                "this profile's data could not be read or written ({})",
                chain(err)
            ),
        ),
        _ => Failure::new("internal", chain(err)),
    }
}

/// A refusal by the server, in words that say what to do.
fn refused(code: ErrorCode, message: &str) -> Failure {
    let text = match code {
        ErrorCode::Unauthorized => {
            "the server refused this device's login: it may have been revoked from another \
             device, or the server was reset (register a new profile)"
        }
        ErrorCode::InviteInvalid => {
            "this invite is used up, revoked or expired: ask the facilitator for a new link"
        }
        ErrorCode::AlreadyMember => "you are in that circle already",
        ErrorCode::ClaimNotAllowed => {
            "you can add your own devices, and people who asked to join with an invite — not \
             anyone else"
        }
        ErrorCode::RateLimited => "too many requests; wait a minute and try again",
        ErrorCode::NotFound => {
            "the server has no such thing for this device (not in that circle, or already gone)"
        }
        ErrorCode::CircleFull => "the circle is full: it has as many members as it allows",
        _ => return Failure::new(code.as_str(), format!("{message} ({code})")),
    };
    Failure::new(code.as_str(), text)
}

/// The error and its causes on one line.
fn chain(err: &anyhow::Error) -> String {
    err.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The notice that the server was restored from a backup.
pub const RESTORED: &str = "the server was restored from a backup: messages sent shortly before \
     may be missing for some members (and some you read may be gone from the server)";

/// A notice from the SDK as a sentence, `title` naming the circle.
pub fn notice(event: &Event, title: &str) -> Option<(&'static str, String)> {
    Some(match event {
        Event::Removed { .. } => (
            "removed",
            format!("you were removed from {title}; its earlier messages stay readable"),
        ),
        Event::Rejoined { .. } => (
            "rejoined",
            format!(
                "this device had fallen out of step with {title} and rejoined it: messages sent \
                 meanwhile cannot be read here"
            ),
        ),
        Event::Undecryptable { seq, .. } => (
            "undecryptable",
            format!("message {seq} in {title} could not be decrypted on this device"),
        ),
        Event::WelcomeUnusable { repaired: true, .. } => (
            "welcome_unusable",
            format!(
                "the invitation to {title} could not be opened on this device, so it joined \
                 directly instead"
            ),
        ),
        Event::WelcomeUnusable {
            repaired: false, ..
        } => (
            "welcome_unusable",
            format!(
                "the invitation to {title} could not be opened on this device, and joining \
                 directly failed: ask the facilitator to add you again"
            ),
        ),
        Event::DevicesAdded { devices, .. } => (
            "devices_added",
            format!(
                "added your other {} to {title}",
                if devices.len() == 1 {
                    "device".to_owned()
                } else {
                    format!("{} devices", devices.len())
                }
            ),
        ),
        _ => return None,
    })
}
