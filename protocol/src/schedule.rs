//! The circle's calendar, as encrypted content: session series and their
//! changes, RSVPs, attendance, the circle agreement, check-ins, and the
//! snapshot a facilitator keeps for members who join late.
//!
//! All of it travels inside MLS like any message ([`crate::content::Content`]);
//! the server never learns when a circle meets. Every item carries an `id` so
//! a client that sees it twice (in the log and in a snapshot) counts it once.
//!
//! Who may say what (clients enforce it against the roster they know):
//! series, changes, attendance, the agreement and check-in prompts come from
//! facilitators only, and a member's client ignores them from anyone else;
//! an RSVP, an agreement acceptance and a check-in reply speak for their
//! sender only.

use crate::DeviceId;
use jiff::civil::{Date, Time};
use serde::{Deserialize, Serialize};

/// Sessions in a series when neither `count` nor `until` is given.
pub const DEFAULT_COUNT: u16 = 12;
/// The shortest session allowed, in minutes.
pub const MIN_DURATION_MINUTES: u16 = 15;
/// The longest session allowed, in minutes.
pub const MAX_DURATION_MINUTES: u16 = 240;
/// The most sessions one series may hold.
pub const MAX_COUNT: u16 = 520;

/// A recurring session: the first date and local start time in an IANA time
/// zone, repeating every `every_weeks` weeks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The first session's date, in the series' time zone.
    pub first_date: Date,
    /// The local start time, in the series' time zone.
    pub start_time: Time,
    /// An IANA time zone name such as `Europe/Berlin` (never a bare offset):
    /// the series keeps its local time across daylight-saving changes.
    pub time_zone: String,
    /// Minutes, 15 to 240.
    pub duration_minutes: u16,
    /// 1 for weekly, 2 for every two weeks, N for every N weeks.
    pub every_weeks: u8,
    /// How many sessions (default 12 when `until` is absent too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u16>,
    /// The last date a session may fall on, instead of a count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Date>,
    /// A title, shown to members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// An agenda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agenda: Option<String>,
    /// Whether sessions meet in the circle's video room.
    #[serde(default)]
    pub video_room: bool,
}

/// A change to a series. An occurrence is named by its originally scheduled
/// date, which never changes when it is moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SeriesChange {
    /// One occurrence moves to another local date and time (in the series'
    /// zone), optionally with another length.
    MoveOccurrence {
        /// The occurrence, by its original date.
        occurrence: Date,
        /// The new date.
        date: Date,
        /// The new local start time.
        start_time: Time,
        /// A new length in minutes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_minutes: Option<u16>,
    },
    /// One occurrence is cancelled.
    CancelOccurrence {
        /// The occurrence, by its original date.
        occurrence: Date,
    },
    /// From this occurrence on, the series follows a new definition (its
    /// `first_date` is the first session of the new part).
    ChangeFrom {
        /// The first occurrence (by original date) that no longer follows the
        /// old definition.
        occurrence: Date,
        /// The series from then on.
        series: Series,
    },
    /// Every occurrence from this one on (by original date) is cancelled;
    /// those before stay. (Readers of an earlier version ignore this change
    /// as an unknown item.)
    CancelFrom {
        /// The first occurrence cancelled, by its original date.
        occurrence: Date,
    },
    /// The whole series is cancelled.
    CancelSeries,
}

/// An answer to "are you coming?". Passing never needs a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RsvpAnswer {
    /// Coming.
    Coming,
    /// Passing on this session.
    Passing,
}

/// One item of a snapshot: what was said, by whom, where in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotItem {
    /// Who said it (as the facilitator's client saw it).
    pub sender: DeviceId,
    /// Where it stood in the circle's log (orders items).
    pub seq: u64,
    /// The content (a calendar kind).
    pub content: crate::content::Content,
}

#[cfg(test)]
mod tests {
    use crate::content::{Content, Envelope};
    use jiff::civil::{date, time};

    #[test]
    fn a_series_travels_as_json_with_its_zone_and_local_time() {
        let series = Content::SessionSeries {
            id: uuid::Uuid::nil(),
            series_id: uuid::Uuid::nil(),
            series: super::Series {
                first_date: date(2026, 12, 3),
                start_time: time(18, 0, 0, 0),
                time_zone: "Europe/Berlin".into(),
                duration_minutes: 90,
                every_weeks: 2,
                count: Some(6),
                until: None,
                title: Some("Thursday circle".into()),
                agenda: None,
                video_room: true,
            },
        };
        let bytes = Envelope::new(series.clone()).to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["kind"], "session_series");
        assert_eq!(json["series"]["first_date"], "2026-12-03");
        assert_eq!(json["series"]["start_time"], "18:00:00");
        assert_eq!(json["series"]["time_zone"], "Europe/Berlin");
        assert_eq!(Envelope::from_bytes(&bytes).content, series);
        assert!(series.facilitators_only());
        assert_eq!(series.calendar_id(), Some(uuid::Uuid::nil()));
    }

    #[test]
    fn a_malformed_calendar_item_reads_as_unknown() {
        let bad = br#"{"v":1,"kind":"rsvp","id":"00000000-0000-0000-0000-000000000000","series_id":"00000000-0000-0000-0000-000000000000","occurrence":"2026-02-30","answer":"coming"}"#;
        assert_eq!(Envelope::from_bytes(bad).content, Content::Unknown);
    }
}
