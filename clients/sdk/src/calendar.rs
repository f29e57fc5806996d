//! The circle's calendar, folded from its calendar items (see `content.rs`
//! and `store/calendar.rs`): sessions with moves and cancellations applied,
//! RSVPs, attendance and who missed, the agreement and who accepted it, and
//! check-ins. Pure functions of the items, the roles and the viewer's zone.
//!
//! Time: a series is anchored in its own IANA zone, so a Thursday 18:00
//! Berlin circle stays 18:00 in Berlin across daylight-saving changes, and a
//! member elsewhere sees it move when only one of the two zones changed. A
//! local time that falls in a gap is taken the way most calendars take it
//! (jiff's "compatible": moved forward by the gap's length).

use crate::store::CalendarItem;
use hearth_protocol::DeviceId;
use hearth_protocol::content::Content;
use hearth_protocol::schedule::{
    DEFAULT_COUNT, MAX_COUNT, MAX_DURATION_MINUTES, MIN_DURATION_MINUTES, RsvpAnswer, Series,
    SeriesChange,
};
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Span, ZonedDateTime as Zoned};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

/// A circle's calendar as this device sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calendar {
    /// Every session of every series, cancelled ones included, by start.
    pub sessions: Vec<Session>,
    /// The current agreement, if a facilitator set one.
    pub agreement: Option<AgreementView>,
    /// Check-in prompts with their replies, oldest first.
    pub check_ins: Vec<CheckIn>,
}

/// One session: an occurrence of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The series.
    pub series_id: Uuid,
    /// The occurrence's originally scheduled date: its name, for RSVPs,
    /// attendance and changes, even after it moved.
    pub occurrence: Date,
    /// When it starts, in the series' zone (after a move, the new time).
    pub start: Zoned,
    /// When the series first scheduled it, in the series' zone (before any
    /// move).
    pub scheduled_start: Zoned,
    /// When it starts, in the viewer's zone.
    pub local_start: Zoned,
    /// Minutes.
    pub duration_minutes: u16,
    /// The series' title.
    pub title: Option<String>,
    /// The series' agenda.
    pub agenda: Option<String>,
    /// Whether it meets in the circle's video room.
    pub video_room: bool,
    /// Whether it was moved from its scheduled time.
    pub moved: bool,
    /// Whether it was cancelled (alone, or with its series).
    pub cancelled: bool,
    /// Answers by device.
    pub rsvps: BTreeMap<DeviceId, Rsvp>,
    /// Who was present, once a facilitator recorded it.
    pub present: Option<BTreeSet<DeviceId>>,
    /// Members neither present nor passing, once attendance is recorded: whom
    /// a facilitator may want to check in with. Only members who were in the
    /// circle when attendance was recorded count (a late joiner missed
    /// nothing before it).
    pub missed: Vec<DeviceId>,
}

/// A device's answer for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rsvp {
    /// Coming or passing.
    pub answer: RsvpAnswer,
    /// An optional note (never asked for).
    pub note: Option<String>,
}

/// The circle agreement and where everyone stands with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementView {
    /// Its version: the lowercase hex SHA-256 of the text.
    pub version: String,
    /// The text.
    pub text: String,
    /// Devices that accepted this version.
    pub accepted_by: BTreeSet<DeviceId>,
    /// Members who have not accepted this version yet.
    pub pending: Vec<DeviceId>,
}

/// A check-in prompt and its replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckIn {
    /// The prompt's id, for replying.
    pub id: Uuid,
    /// The prompt.
    pub text: String,
    /// Replies by device: a mood from 1 to 5 and an optional line.
    pub replies: BTreeMap<DeviceId, (u8, Option<String>)>,
}

/// The version of an agreement text.
pub(crate) fn agreement_version(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a session may last this many minutes.
pub(crate) fn valid_duration(minutes: u16) -> bool {
    (MIN_DURATION_MINUTES..=MAX_DURATION_MINUTES).contains(&minutes)
}

/// Why a session length is refused.
pub(crate) const DURATION_RULE: &str = "a session lasts 15 to 240 minutes";

/// Checks a series against the schema's rules; its zone when it passes.
pub(crate) fn check_series(series: &Series) -> Result<TimeZone, &'static str> {
    if !valid_duration(series.duration_minutes) {
        return Err(DURATION_RULE);
    }
    if series.every_weeks == 0 {
        return Err("a series repeats every 1 or more weeks");
    }
    if series.count.is_some_and(|c| c == 0 || c > MAX_COUNT) {
        return Err("a series holds 1 to 520 sessions");
    }
    if series.until.is_some_and(|until| until < series.first_date) {
        return Err("a series cannot end before it starts");
    }
    TimeZone::get(&series.time_zone).map_err(|_| "not an IANA time zone name")
}

/// The dates a series definition meets on.
pub(crate) fn dates(series: &Series) -> Vec<Date> {
    let limit = match (series.count, series.until) {
        (Some(count), _) => count,
        (None, Some(_)) => MAX_COUNT,
        (None, None) => DEFAULT_COUNT,
    };
    let step = Span::new().weeks(i64::from(series.every_weeks));
    let mut out = Vec::new();
    let mut date = series.first_date;
    for _ in 0..limit.min(MAX_COUNT) {
        if series.until.is_some_and(|until| date > until) {
            break;
        }
        out.push(date);
        match date.checked_add(step) {
            Ok(next) => date = next,
            Err(_) => break,
        }
    }
    out
}

/// A series as its items left it.
#[derive(Default)]
struct SeriesState {
    /// Definitions, each from an occurrence on (the first from the start).
    parts: Vec<(Option<Date>, Series)>,
    moves: HashMap<Date, (Date, Time, Option<u16>)>,
    cancelled: BTreeSet<Date>,
    /// Every occurrence from this one on is cancelled.
    cancelled_from: Option<Date>,
    cancelled_all: bool,
}

/// Everything the items say, before it becomes sessions.
#[derive(Default)]
struct Folded {
    series: BTreeMap<Uuid, SeriesState>,
    rsvps: HashMap<(Uuid, Date), BTreeMap<DeviceId, Rsvp>>,
    /// Who was present, and who was expected (empty: not said).
    attendance: HashMap<(Uuid, Date), (BTreeSet<DeviceId>, Vec<DeviceId>)>,
    agreement: Option<String>,
    accepted: HashMap<String, BTreeSet<DeviceId>>,
    check_ins: Vec<CheckIn>,
}

impl Folded {
    fn apply(&mut self, item: CalendarItem) {
        let sender = item.sender;
        match item.content {
            Content::SessionSeries {
                series_id, series, ..
            } if check_series(&series).is_ok() => {
                let state = self.series.entry(series_id).or_default();
                state.parts = vec![(None, series)];
            }
            Content::SessionChange {
                series_id, change, ..
            } => {
                let Some(state) = self.series.get_mut(&series_id) else {
                    return;
                };
                match change {
                    SeriesChange::MoveOccurrence {
                        occurrence,
                        date,
                        start_time,
                        duration_minutes,
                    } if duration_minutes.is_none_or(valid_duration) => {
                        state
                            .moves
                            .insert(occurrence, (date, start_time, duration_minutes));
                    }
                    SeriesChange::MoveOccurrence { .. } => {}
                    SeriesChange::CancelOccurrence { occurrence } => {
                        state.cancelled.insert(occurrence);
                    }
                    SeriesChange::ChangeFrom { occurrence, series } => {
                        if check_series(&series).is_ok() {
                            state
                                .parts
                                .retain(|(from, _)| from.is_none_or(|f| f < occurrence));
                            state.parts.push((Some(occurrence), series));
                        }
                    }
                    SeriesChange::CancelFrom { occurrence } => {
                        state.cancelled_from = Some(
                            state
                                .cancelled_from
                                .map_or(occurrence, |from| from.min(occurrence)),
                        );
                    }
                    SeriesChange::CancelSeries => state.cancelled_all = true,
                }
            }
            Content::Rsvp {
                series_id,
                occurrence,
                answer,
                note,
                ..
            } => {
                let answers = self.rsvps.entry((series_id, occurrence)).or_default();
                answers.insert(sender, Rsvp { answer, note });
            }
            Content::Attendance {
                series_id,
                occurrence,
                present,
                expected,
                ..
            } => {
                let present = present.into_iter().collect();
                self.attendance
                    .insert((series_id, occurrence), (present, expected));
            }
            Content::Agreement { text, .. } => self.agreement = Some(text),
            Content::AgreementAccepted { version, .. } => {
                self.accepted.entry(version).or_default().insert(sender);
            }
            Content::CheckInPrompt { id, text } => self.check_ins.push(CheckIn {
                id,
                text,
                replies: BTreeMap::new(),
            }),
            Content::CheckInReply {
                prompt, mood, line, ..
            } => {
                let prompt = self.check_ins.iter_mut().find(|c| c.id == prompt);
                if let Some(prompt) = prompt.filter(|_| (1..=5).contains(&mood)) {
                    prompt.replies.insert(sender, (mood, line));
                }
            }
            _ => {}
        }
    }
}

/// Folds a circle's items into its calendar. `facilitators`: who may send
/// facilitator-only items (others' are ignored); `members`: the circle's
/// members besides facilitators (for who missed and who has not accepted);
/// `viewer`: the zone to show local times in.
pub(crate) fn fold(
    items: Vec<CalendarItem>,
    facilitators: &[DeviceId],
    members: &[DeviceId],
    viewer: &TimeZone,
) -> Calendar {
    let mut folded = Folded::default();
    for item in items {
        if item.content.facilitators_only() && !facilitators.contains(&item.sender) {
            continue;
        }
        folded.apply(item);
    }
    let mut sessions = Vec::new();
    for (series_id, state) in &folded.series {
        for (index, (from, series)) in state.parts.iter().enumerate() {
            let until = state.parts.get(index + 1).and_then(|(next, _)| *next);
            let Ok(zone) = TimeZone::get(&series.time_zone) else {
                continue;
            };
            for occurrence in dates(series) {
                if from.is_some_and(|f| occurrence < f) || until.is_some_and(|u| occurrence >= u) {
                    continue;
                }
                let moved = state.moves.get(&occurrence);
                let (date, time) = moved.map_or((occurrence, series.start_time), |m| (m.0, m.1));
                let Ok(start) = date.to_datetime(time).to_zoned_datetime(zone.clone()) else {
                    continue;
                };
                let Ok(scheduled_start) = occurrence
                    .to_datetime(series.start_time)
                    .to_zoned_datetime(zone.clone())
                else {
                    continue;
                };
                let key = (*series_id, occurrence);
                let rsvps = folded.rsvps.get(&key).cloned().unwrap_or_default();
                let recorded = folded.attendance.get(&key);
                let present = recorded.map(|(present, _)| present.clone());
                let missed = recorded.map_or_else(Vec::new, |(present, expected)| {
                    members
                        .iter()
                        .filter(|m| expected.is_empty() || expected.contains(m))
                        .filter(|m| !present.contains(m))
                        .filter(|m| rsvps.get(m).is_none_or(|r| r.answer != RsvpAnswer::Passing))
                        .copied()
                        .collect()
                });
                sessions.push(Session {
                    series_id: *series_id,
                    occurrence,
                    local_start: start.with_time_zone(viewer.clone()),
                    start,
                    scheduled_start,
                    duration_minutes: moved.and_then(|m| m.2).unwrap_or(series.duration_minutes),
                    title: series.title.clone(),
                    agenda: series.agenda.clone(),
                    video_room: series.video_room,
                    moved: moved.is_some(),
                    cancelled: state.cancelled_all
                        || state.cancelled.contains(&occurrence)
                        || state.cancelled_from.is_some_and(|from| occurrence >= from),
                    rsvps,
                    present,
                    missed,
                });
            }
        }
    }
    sessions.sort_by_key(|s| s.start.timestamp());
    let agreement = folded.agreement.map(|text| {
        let version = agreement_version(&text);
        let accepted_by = folded.accepted.remove(&version).unwrap_or_default();
        let pending = members
            .iter()
            .filter(|m| !accepted_by.contains(m))
            .copied()
            .collect();
        AgreementView {
            version,
            text,
            accepted_by,
            pending,
        }
    });
    Calendar {
        sessions,
        agreement,
        check_ins: folded.check_ins,
    }
}

#[cfg(test)]
mod tests;
