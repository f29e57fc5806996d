//! What the calendar commands print: typed results, their JSON the serde
//! form and their text for people.

use crate::Output;
use hearth_client::Session;
use hearth_protocol::DeviceId;
use hearth_protocol::schedule::RsvpAnswer;
use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;

/// One answer to a session's RSVP.
#[derive(Serialize)]
pub(super) struct RsvpView {
    pub(super) device_id: DeviceId,
    pub(super) answer: RsvpAnswer,
    pub(super) note: Option<String>,
}

/// A session as `hearth sessions --json` gives it.
#[derive(Serialize)]
pub(super) struct SessionView {
    pub(super) series_id: Uuid,
    pub(super) occurrence: String,
    pub(super) start: String,
    pub(super) start_in_series_zone: String,
    pub(super) scheduled_start: String,
    pub(super) minutes: u16,
    pub(super) title: Option<String>,
    pub(super) video_room: bool,
    pub(super) moved: bool,
    pub(super) cancelled: bool,
    pub(super) rsvps: Vec<RsvpView>,
    pub(super) present: Option<BTreeSet<DeviceId>>,
    pub(super) missed: Vec<DeviceId>,
}

impl SessionView {
    pub(super) fn of(session: &Session) -> Self {
        Self {
            series_id: session.series_id,
            occurrence: session.occurrence.to_string(),
            start: session.local_start.to_string(),
            start_in_series_zone: session.start.to_string(),
            scheduled_start: session.scheduled_start.to_string(),
            minutes: session.duration_minutes,
            title: session.title.clone(),
            video_room: session.video_room,
            moved: session.moved,
            cancelled: session.cancelled,
            rsvps: session
                .rsvps
                .iter()
                .map(|(device, r)| RsvpView {
                    device_id: *device,
                    answer: r.answer,
                    note: r.note.clone(),
                })
                .collect(),
            present: session.present.clone(),
            missed: session.missed.clone(),
        }
    }
}

/// The sessions of a circle, with their lines for people.
#[derive(Serialize)]
pub(super) struct Sessions {
    pub(super) sessions: Vec<SessionView>,
    #[serde(skip)]
    pub(super) lines: Vec<String>,
}

impl Output for Sessions {
    fn text(&self) -> String {
        if self.sessions.is_empty() {
            return "no sessions scheduled".to_owned();
        }
        self.lines.join("\n")
    }
}

/// A result with a fixed sentence for people: `{"<key>": value}` in JSON.
#[derive(Serialize)]
pub(super) struct Done<T: Serialize> {
    #[serde(flatten)]
    pub(super) value: T,
    #[serde(skip)]
    pub(super) text: String,
}

impl<T: Serialize> Output for Done<T> {
    fn text(&self) -> String {
        self.text.clone()
    }
}

pub(super) fn done<T: Serialize>(value: T, text: impl Into<String>) -> Done<T> {
    Done {
        value,
        text: text.into(),
    }
}

#[derive(Serialize)]
pub(super) struct SeriesScheduled {
    pub(super) series_id: Uuid,
}

#[derive(Serialize)]
pub(super) struct Moved {
    pub(super) moved: String,
}

/// What a cancellation took away.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum CancelledWhat {
    /// One session, by its name (the date it was scheduled on).
    Occurrence(String),
    /// Every session from this one on.
    From {
        /// The first cancelled.
        from: String,
    },
    /// The whole series (`"series"`).
    Series(&'static str),
}

#[derive(Serialize)]
pub(super) struct Cancelled {
    pub(super) cancelled: CancelledWhat,
}

#[derive(Serialize)]
pub(super) struct Answered {
    pub(super) answer: RsvpAnswer,
    pub(super) occurrence: String,
}

#[derive(Serialize)]
pub(super) struct Recorded {
    pub(super) present: Vec<DeviceId>,
    pub(super) occurrence: String,
}

/// A session somebody missed.
#[derive(Serialize)]
pub(super) struct MissedView {
    pub(super) series_id: Uuid,
    pub(super) occurrence: String,
    pub(super) start: String,
    pub(super) missed: Vec<DeviceId>,
}

/// Who missed which session, with the lines for people.
#[derive(Serialize)]
pub(super) struct Missed {
    pub(super) missed: Vec<MissedView>,
    #[serde(skip)]
    pub(super) lines: Vec<String>,
}

impl Output for Missed {
    fn text(&self) -> String {
        if self.missed.is_empty() {
            return "nobody missed a session".to_owned();
        }
        self.lines.join("\n")
    }
}

#[derive(Serialize)]
pub(super) struct AgreementSet {
    pub(super) version: String,
}

#[derive(Serialize)]
pub(super) struct AgreementAccepted {
    pub(super) accepted: String,
}

/// The agreement (`null` in JSON when there is none).
#[derive(Serialize)]
pub(super) struct AgreementView {
    pub(super) version: String,
    pub(super) text: String,
    pub(super) accepted_by: Vec<DeviceId>,
    pub(super) pending: Vec<DeviceId>,
}

#[derive(Serialize)]
#[serde(transparent)]
pub(super) struct AgreementShown {
    pub(super) agreement: Option<AgreementView>,
    #[serde(skip)]
    pub(super) text: String,
}

impl Output for AgreementShown {
    fn text(&self) -> String {
        self.text.clone()
    }
}

#[derive(Serialize)]
pub(super) struct Prompted {
    pub(super) prompt_id: Uuid,
}

#[derive(Serialize)]
pub(super) struct Replied {
    pub(super) replied: Uuid,
}

#[derive(Serialize)]
pub(super) struct ReplyView {
    pub(super) device_id: DeviceId,
    pub(super) mood: u8,
    pub(super) line: Option<String>,
}

#[derive(Serialize)]
pub(super) struct CheckInView {
    pub(super) prompt_id: Uuid,
    pub(super) text: String,
    pub(super) replies: Vec<ReplyView>,
}

/// The circle's check-ins with their replies, and the lines for people.
#[derive(Serialize)]
pub(super) struct CheckIns {
    pub(super) check_ins: Vec<CheckInView>,
    #[serde(skip)]
    pub(super) lines: Vec<String>,
}

impl Output for CheckIns {
    fn text(&self) -> String {
        if self.check_ins.is_empty() {
            return "no check-ins yet".to_owned();
        }
        self.lines.join("\n")
    }
}
