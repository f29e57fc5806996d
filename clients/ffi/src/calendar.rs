//! The circle's calendar through the bindings: session series, changes,
//! RSVPs, attendance, the agreement and check-ins. Dates travel as
//! `YYYY-MM-DD`, times as `HH:MM`, zones as IANA names, instants as unix
//! seconds; names come with device ids so an app shows people, not ids.

use crate::convert::{circle_id, device_id, uuid};
use crate::{HearthClient, HearthError};
use hearth_client::Session;
use hearth_protocol::DeviceId;
use hearth_protocol::schedule::{RsvpAnswer, Series, SeriesChange};
use jiff::civil::{Date, Time};
use std::collections::HashMap;

fn date(text: &str) -> Result<Date, HearthError> {
    text.parse().map_err(|_| HearthError::InvalidInput {
        detail: format!("{text:?} is not a date (YYYY-MM-DD)"),
    })
}

fn time(text: &str) -> Result<Time, HearthError> {
    text.parse().map_err(|_| HearthError::InvalidInput {
        detail: format!("{text:?} is not a time (HH:MM)"),
    })
}

/// A series of sessions to schedule.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SeriesPlan {
    /// The first session's date, `YYYY-MM-DD`, in `time_zone`.
    pub first_date: String,
    /// The local start time, `HH:MM`.
    pub start_time: String,
    /// An IANA zone such as `Europe/Berlin`: sessions keep their local time
    /// across daylight-saving changes.
    pub time_zone: String,
    /// Minutes, 15 to 240.
    pub duration_minutes: u16,
    /// 1 weekly, 2 every two weeks, ...
    pub every_weeks: u8,
    /// How many sessions (12 when neither this nor `until` is given).
    pub count: Option<u16>,
    /// The last date a session may fall on, `YYYY-MM-DD`.
    pub until: Option<String>,
    /// A title members see.
    pub title: Option<String>,
    /// An agenda.
    pub agenda: Option<String>,
    /// Whether sessions meet in the circle's video room.
    pub video_room: bool,
}

impl SeriesPlan {
    fn into_series(self) -> Result<Series, HearthError> {
        Ok(Series {
            first_date: date(&self.first_date)?,
            start_time: time(&self.start_time)?,
            time_zone: self.time_zone,
            duration_minutes: self.duration_minutes,
            every_weeks: self.every_weeks,
            count: self.count,
            until: self.until.as_deref().map(date).transpose()?,
            title: self.title,
            agenda: self.agenda,
            video_room: self.video_room,
        })
    }
}

/// Someone, by device, with the name they gave.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Person {
    /// The device.
    pub device_id: String,
    /// The name, if it reached this device.
    pub name: Option<String>,
}

/// One session as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionView {
    /// The series, for changes and RSVPs.
    pub series_id: String,
    /// The occurrence's original date (`YYYY-MM-DD`): its name, even after
    /// it moved.
    pub occurrence: String,
    /// When it starts: unix seconds.
    pub starts_at: i64,
    /// When it starts in the viewer's zone, RFC 3339 with the zone
    /// (`2026-12-01T19:00:00+01:00[Europe/Berlin]`).
    pub local_start: String,
    /// Minutes.
    pub duration_minutes: u16,
    /// The series' title.
    pub title: Option<String>,
    /// The series' agenda.
    pub agenda: Option<String>,
    /// Whether it meets in the video room.
    pub video_room: bool,
    /// Moved from its scheduled time.
    pub moved: bool,
    /// Cancelled.
    pub cancelled: bool,
    /// Who said they are coming.
    pub coming: Vec<Person>,
    /// Who is passing.
    pub passing: Vec<Person>,
    /// Members who neither came nor passed, once attendance is recorded.
    pub missed: Vec<Person>,
}

fn person(device: &DeviceId, names: &HashMap<DeviceId, String>) -> Person {
    Person {
        device_id: device.to_string(),
        name: names.get(device).cloned(),
    }
}

impl SessionView {
    fn from_sdk(session: &Session, names: &HashMap<DeviceId, String>) -> Self {
        let answered = |answer: RsvpAnswer| {
            session
                .rsvps
                .iter()
                .filter(|(_, rsvp)| rsvp.answer == answer)
                .map(|(device, _)| person(device, names))
                .collect()
        };
        Self {
            series_id: session.series_id.to_string(),
            occurrence: session.occurrence.to_string(),
            starts_at: session.start.timestamp().as_second(),
            local_start: session.local_start.to_string(),
            duration_minutes: session.duration_minutes,
            title: session.title.clone(),
            agenda: session.agenda.clone(),
            video_room: session.video_room,
            moved: session.moved,
            cancelled: session.cancelled,
            coming: answered(RsvpAnswer::Coming),
            passing: answered(RsvpAnswer::Passing),
            missed: session.missed.iter().map(|d| person(d, names)).collect(),
        }
    }
}

/// The circle agreement and where everyone stands.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Agreement {
    /// Its version (hex SHA-256 of the text).
    pub version: String,
    /// The text.
    pub text: String,
    /// Members who have not accepted this version.
    pub pending: Vec<Person>,
}

/// A check-in prompt and the replies to it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CheckIn {
    /// The prompt's id, for replying.
    pub id: String,
    /// The prompt.
    pub text: String,
    /// Replies: who, a mood from 1 to 5, and an optional line.
    pub replies: Vec<CheckInReply>,
}

/// One reply to a check-in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CheckInReply {
    /// Who.
    pub member: Person,
    /// 1 to 5.
    pub mood: u8,
    /// An optional line.
    pub line: Option<String>,
}

#[uniffi::export]
impl HearthClient {
    /// Asks the circle how everyone is (facilitators). Returns the prompt's
    /// id.
    pub async fn prompt_check_in(
        &self,
        circle_id: String,
        text: String,
    ) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.prompt_check_in(&circle, &text).await?.to_string())
        })
        .await
    }

    /// Answers a check-in: a mood from 1 to 5 and an optional line.
    pub async fn reply_check_in(
        &self,
        circle_id: String,
        prompt_id: String,
        mood: u8,
        line: Option<String>,
    ) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client
                .reply_check_in(&circle, uuid(&prompt_id)?, mood, line.as_deref())
                .await?)
        })
        .await
    }

    /// The circle's check-ins with their replies, oldest first.
    pub async fn check_ins(&self, circle_id: String) -> Result<Vec<CheckIn>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let names = client.names(&circle).await?;
            Ok(client
                .calendar(&circle)
                .await?
                .check_ins
                .into_iter()
                .map(|c| CheckIn {
                    id: c.id.to_string(),
                    text: c.text,
                    replies: c
                        .replies
                        .iter()
                        .map(|(device, (mood, line))| CheckInReply {
                            member: person(device, &names),
                            mood: *mood,
                            line: line.clone(),
                        })
                        .collect(),
                })
                .collect())
        })
        .await
    }

    /// Schedules a series (facilitators). Returns its id.
    pub async fn schedule_series(
        &self,
        circle_id: String,
        plan: SeriesPlan,
    ) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let series = plan.into_series()?;
            Ok(client.schedule_series(&circle, series).await?.to_string())
        })
        .await
    }

    /// Moves one session (facilitators): `occurrence` is its original date.
    pub async fn move_session(
        &self,
        circle_id: String,
        series_id: String,
        occurrence: String,
        new_date: String,
        new_start_time: String,
        duration_minutes: Option<u16>,
    ) -> Result<(), HearthError> {
        self.with(move |client| async move {
            let change = SeriesChange::MoveOccurrence {
                occurrence: date(&occurrence)?,
                date: date(&new_date)?,
                start_time: time(&new_start_time)?,
                duration_minutes,
            };
            let circle = self::circle_id(&circle_id)?;
            Ok(client
                .change_series(&circle, uuid(&series_id)?, change)
                .await?)
        })
        .await
    }

    /// Cancels one session, or every session from it on with `onward`, or
    /// the whole series when `occurrence` is none (facilitators).
    pub async fn cancel(
        &self,
        circle_id: String,
        series_id: String,
        occurrence: Option<String>,
        onward: bool,
    ) -> Result<(), HearthError> {
        self.with(move |client| async move {
            let change = match occurrence {
                Some(occurrence) if onward => SeriesChange::CancelFrom {
                    occurrence: date(&occurrence)?,
                },
                Some(occurrence) => SeriesChange::CancelOccurrence {
                    occurrence: date(&occurrence)?,
                },
                None => SeriesChange::CancelSeries,
            };
            let circle = self::circle_id(&circle_id)?;
            Ok(client
                .change_series(&circle, uuid(&series_id)?, change)
                .await?)
        })
        .await
    }

    /// Says whether this member is coming to a session; passing needs no
    /// reason.
    pub async fn rsvp(
        &self,
        circle_id: String,
        series_id: String,
        occurrence: String,
        coming: bool,
        note: Option<String>,
    ) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let answer = if coming {
                RsvpAnswer::Coming
            } else {
                RsvpAnswer::Passing
            };
            Ok(client
                .rsvp(
                    &circle,
                    uuid(&series_id)?,
                    date(&occurrence)?,
                    answer,
                    note.as_deref(),
                )
                .await?)
        })
        .await
    }

    /// Records who was present at a session (facilitators).
    pub async fn record_attendance(
        &self,
        circle_id: String,
        series_id: String,
        occurrence: String,
        present: Vec<String>,
    ) -> Result<(), HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let present = present
                .iter()
                .map(|d| device_id(d))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(client
                .record_attendance(&circle, uuid(&series_id)?, date(&occurrence)?, &present)
                .await?)
        })
        .await
    }

    /// Every session of the circle, in `time_zone` (an IANA name; the
    /// device's zone when none).
    pub async fn sessions(
        &self,
        circle_id: String,
        time_zone: Option<String>,
    ) -> Result<Vec<SessionView>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let calendar = match time_zone {
                Some(zone) => {
                    let zone =
                        jiff::tz::TimeZone::get(&zone).map_err(|_| HearthError::InvalidInput {
                            detail: format!("{zone:?} is not an IANA time zone"),
                        })?;
                    client.calendar_in(&circle, &zone).await?
                }
                None => client.calendar(&circle).await?,
            };
            let names = client.names(&circle).await?;
            Ok(calendar
                .sessions
                .iter()
                .map(|s| SessionView::from_sdk(s, &names))
                .collect())
        })
        .await
    }

    /// Sets the circle agreement (facilitators). Returns its version.
    pub async fn set_agreement(
        &self,
        circle_id: String,
        text: String,
    ) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.set_agreement(&circle, &text).await?)
        })
        .await
    }

    /// Accepts the circle's current agreement. Returns its version.
    pub async fn accept_agreement(&self, circle_id: String) -> Result<String, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            Ok(client.accept_agreement(&circle).await?)
        })
        .await
    }

    /// The circle's agreement, if one was set.
    pub async fn agreement(&self, circle_id: String) -> Result<Option<Agreement>, HearthError> {
        self.in_circle(circle_id, move |client, circle| async move {
            let names = client.names(&circle).await?;
            Ok(client
                .calendar(&circle)
                .await?
                .agreement
                .map(|a| Agreement {
                    version: a.version,
                    text: a.text,
                    pending: a.pending.iter().map(|d| person(d, &names)).collect(),
                }))
        })
        .await
    }
}
