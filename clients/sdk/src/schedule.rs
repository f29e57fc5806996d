//! Scheduling: a facilitator schedules and changes session series, records
//! attendance, sets the agreement and prompts check-ins; every member RSVPs,
//! accepts the agreement and replies to check-ins. All of it is encrypted
//! content (`hearth_protocol::schedule`); the server learns no session time
//! from it (it sees call-token requests, as the README says). Reminders are computed here, for the phone to schedule as
//! local notifications.

use crate::calendar::{self, Calendar, Session};

mod named;
use crate::sync::{FollowUp, FollowUps};
use crate::{Client, ClientError, Result, load};
use hearth_protocol::circles::Role;
use hearth_protocol::content::Content;
use hearth_protocol::schedule::{RsvpAnswer, Series, SeriesChange};
use hearth_protocol::{CircleId, DeviceId};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use uuid::Uuid;

/// How long before a session its reminders fire.
const REMINDER_LEADS: [SignedDuration; 2] = [
    SignedDuration::from_hours(24),
    SignedDuration::from_mins(15),
];

/// A local notification for the phone to schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Reminder {
    /// The circle.
    pub circle_id: CircleId,
    /// The series.
    pub series_id: Uuid,
    /// The session, by its original date.
    pub occurrence: Date,
    /// The series' title.
    pub title: Option<String>,
    /// When the session starts, in the device's zone.
    pub starts_at: ZonedDateTime,
    /// When to remind.
    pub remind_at: Timestamp,
}

impl Client {
    /// The circle's facilitators, as remembered when they were last read
    /// from the server's roster in this epoch (roles change only with a
    /// commit); otherwise read from the roster when the server answers (and
    /// remembered), else as remembered.
    pub(crate) async fn facilitators(&self, circle: &CircleId) -> Result<Vec<DeviceId>> {
        let (circle_id, key) = (circle.clone(), facilitators_read_at(circle));
        let (remembered, epoch, read_at) = self
            .with(move |s| {
                Ok((
                    s.store.facilitators(&circle_id)?,
                    load(s, &circle_id)
                        .ok()
                        .map(|g| g.epoch().as_u64().to_string()),
                    s.store.setting(&key)?,
                ))
            })
            .await?;
        if !remembered.is_empty() && epoch.is_some() && epoch == read_at {
            return Ok(remembered);
        }
        let seen = match self.authorized().await {
            Ok(api) => api.circle(circle).await.ok(),
            Err(_) => None,
        };
        let answered = seen.is_some();
        let facilitating: Vec<DeviceId> = seen
            .map(|c| c.roster)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.role == Role::Facilitator)
            .map(|r| r.device_id)
            .collect();
        let (circle, key) = (circle.clone(), facilitators_read_at(circle));
        self.with(move |s| {
            s.store.add_facilitators(&circle, &facilitating)?;
            if answered && let Some(epoch) = epoch {
                s.store.set_setting(&key, &epoch)?;
            }
            s.store.facilitators(&circle)
        })
        .await
    }

    /// The circle's facilitators if this device is one of them. A role once
    /// remembered is not taken away (nothing demotes a facilitator), so a
    /// remembered one needs no request; otherwise the roster is asked.
    pub(crate) async fn facilitating(&self, circle: &CircleId) -> Result<Option<Vec<DeviceId>>> {
        let (me, _) = self.signing_key().await?;
        let circle_id = circle.clone();
        let remembered = self.with(move |s| s.store.facilitators(&circle_id)).await?;
        let facilitators = if remembered.contains(&me) {
            remembered
        } else {
            self.facilitators(circle).await?
        };
        Ok(facilitators.contains(&me).then_some(facilitators))
    }

    /// Sends a calendar item; facilitator-only items need this device to be
    /// a facilitator, and bring the snapshot up to date.
    async fn send_calendar(&self, circle: &CircleId, content: Content) -> Result<()> {
        let facilitating = content.facilitators_only();
        if facilitating && self.facilitating(circle).await?.is_none() {
            return Err(ClientError::NotFacilitator);
        }
        self.send(circle, content).await?;
        if facilitating {
            let mut follow_ups = FollowUps::default();
            follow_ups.push(FollowUp::WriteSnapshot(circle.clone()));
            self.drive(follow_ups).await?;
        }
        Ok(())
    }

    /// Schedules a session series (facilitators). Returns its id.
    pub async fn schedule_series(&self, circle: &CircleId, series: Series) -> Result<Uuid> {
        calendar::check_series(&series).map_err(ClientError::InvalidSchedule)?;
        let series_id = Uuid::new_v4();
        let content = Content::SessionSeries {
            id: Uuid::new_v4(),
            series_id,
            series,
        };
        self.send_calendar(circle, content).await?;
        Ok(series_id)
    }

    /// Moves or cancels a session, changes the series from a session on, or
    /// cancels it (facilitators).
    pub async fn change_series(
        &self,
        circle: &CircleId,
        series_id: Uuid,
        change: SeriesChange,
    ) -> Result<()> {
        match &change {
            SeriesChange::MoveOccurrence {
                occurrence,
                duration_minutes,
                ..
            } => {
                if duration_minutes.is_some_and(|m| !calendar::valid_duration(m)) {
                    return Err(ClientError::InvalidSchedule(calendar::DURATION_RULE));
                }
                self.known_session(circle, series_id, *occurrence).await?;
            }
            SeriesChange::CancelOccurrence { occurrence }
            | SeriesChange::CancelFrom { occurrence } => {
                self.known_session(circle, series_id, *occurrence).await?;
            }
            SeriesChange::ChangeFrom { occurrence, series } => {
                calendar::check_series(series).map_err(ClientError::InvalidSchedule)?;
                self.known_session(circle, series_id, *occurrence).await?;
            }
            SeriesChange::CancelSeries => {
                let ours = |s: &Session| s.series_id == series_id;
                let known = self
                    .known_calendar_for(circle, |c| c.sessions.iter().any(ours))
                    .await?;
                if !known.sessions.iter().any(ours) {
                    return Err(ClientError::NoSuchSession);
                }
            }
        }
        let content = Content::SessionChange {
            id: Uuid::new_v4(),
            series_id,
            change,
        };
        self.send_calendar(circle, content).await
    }

    /// Answers for one session: coming, or passing (a note is optional, a
    /// reason is never asked for).
    pub async fn rsvp(
        &self,
        circle: &CircleId,
        series_id: Uuid,
        occurrence: Date,
        answer: RsvpAnswer,
        note: Option<&str>,
    ) -> Result<()> {
        self.known_session(circle, series_id, occurrence).await?;
        let content = Content::Rsvp {
            id: Uuid::new_v4(),
            series_id,
            occurrence,
            answer,
            note: note.map(str::to_owned),
        };
        self.send_calendar(circle, content).await
    }

    /// Records who was present at a session (facilitators): devices in the
    /// circle. The members in the circle now are recorded as those expected,
    /// so nobody who joins later counts as having missed it.
    pub async fn record_attendance(
        &self,
        circle: &CircleId,
        series_id: Uuid,
        occurrence: Date,
        present: &[DeviceId],
    ) -> Result<()> {
        self.known_session(circle, series_id, occurrence).await?;
        let everyone = self.members(circle).await?;
        if present.iter().any(|d| !everyone.contains(d)) {
            return Err(ClientError::NotInCircle);
        }
        // The facilitators as remembered: `send_calendar` asks the server
        // once, not twice.
        let remembered = circle.clone();
        let facilitators = self
            .with(move |s| s.store.facilitators(&remembered))
            .await?;
        let content = Content::Attendance {
            id: Uuid::new_v4(),
            series_id,
            occurrence,
            present: present.to_vec(),
            expected: everyone
                .into_iter()
                .filter(|d| !facilitators.contains(d))
                .collect(),
        };
        self.send_calendar(circle, content).await
    }

    /// Sets the circle's agreement (facilitators). Returns its version.
    pub async fn set_agreement(&self, circle: &CircleId, text: &str) -> Result<String> {
        let content = Content::Agreement {
            id: Uuid::new_v4(),
            text: text.to_owned(),
        };
        self.send_calendar(circle, content).await?;
        Ok(calendar::agreement_version(text))
    }

    /// Accepts the circle's current agreement. Returns the version accepted.
    pub async fn accept_agreement(&self, circle: &CircleId) -> Result<String> {
        let version = self
            .calendar(circle)
            .await?
            .agreement
            .map(|a| a.version)
            .ok_or(ClientError::InvalidSchedule(
                "the circle has no agreement yet",
            ))?;
        let content = Content::AgreementAccepted {
            id: Uuid::new_v4(),
            version: version.clone(),
        };
        self.send_calendar(circle, content).await?;
        Ok(version)
    }

    /// Prompts a check-in between sessions (facilitators). Returns its id.
    pub async fn prompt_check_in(&self, circle: &CircleId, text: &str) -> Result<Uuid> {
        let id = Uuid::new_v4();
        let content = Content::CheckInPrompt {
            id,
            text: text.to_owned(),
        };
        self.send_calendar(circle, content).await?;
        Ok(id)
    }

    /// Replies to a check-in: a mood from 1 (low) to 5 (good) and an
    /// optional line.
    pub async fn reply_check_in(
        &self,
        circle: &CircleId,
        prompt: Uuid,
        mood: u8,
        line: Option<&str>,
    ) -> Result<()> {
        if !(1..=5).contains(&mood) {
            return Err(ClientError::InvalidCheckIn("a mood is 1 to 5"));
        }
        let asked = |c: &Calendar| c.check_ins.iter().any(|c| c.id == prompt);
        if !asked(&self.known_calendar_for(circle, asked).await?) {
            return Err(ClientError::NoSuchCheckIn);
        }
        let content = Content::CheckInReply {
            id: Uuid::new_v4(),
            prompt,
            mood,
            line: line.map(str::to_owned),
        };
        self.send_calendar(circle, content).await
    }

    /// The circle's calendar, local times in this device's zone.
    pub async fn calendar(&self, circle: &CircleId) -> Result<Calendar> {
        self.calendar_in(circle, &TimeZone::system()).await
    }

    /// The circle's calendar, local times in `viewer`. Catches up with the
    /// circle and reads a newer snapshot first.
    pub async fn calendar_in(&self, circle: &CircleId, viewer: &TimeZone) -> Result<Calendar> {
        self.sync(circle).await?;
        let facilitators = self.facilitators(circle).await?;
        self.read_snapshot(circle, &facilitators).await?;
        let members: Vec<DeviceId> = self
            .members(circle)
            .await?
            .into_iter()
            .filter(|d| !facilitators.contains(d))
            .collect();
        let (circle, viewer) = (circle.clone(), viewer.clone());
        self.with(move |s| {
            let items = s.store.calendar_items(&circle)?;
            Ok(calendar::fold(items, &facilitators, &members, &viewer))
        })
        .await
    }

    /// Reminders due within `horizon` from now, across every circle, for the
    /// phone to schedule as local notifications: 24 hours and 15 minutes
    /// before each session this device has not passed on.
    pub async fn upcoming_reminders(&self, horizon: SignedDuration) -> Result<Vec<Reminder>> {
        let (me, _) = self.signing_key().await?;
        let now = Timestamp::now();
        let until = now.checked_add(horizon).unwrap_or(Timestamp::MAX);
        let mut reminders = Vec::new();
        for circle in self.circles().await? {
            let calendar = match self.calendar(&circle).await {
                // No reminders for a circle this device is no longer in;
                // the others still count.
                Err(ClientError::RemovedFromCircle | ClientError::LeftCircle) => continue,
                other => other?,
            };
            for session in calendar.sessions {
                let passing = session
                    .rsvps
                    .get(&me)
                    .is_some_and(|r| r.answer == RsvpAnswer::Passing);
                if session.cancelled || passing {
                    continue;
                }
                for lead in REMINDER_LEADS {
                    let Ok(remind_at) = session.start.timestamp().checked_sub(lead) else {
                        continue;
                    };
                    if (now..=until).contains(&remind_at) {
                        reminders.push(Reminder {
                            circle_id: circle.clone(),
                            series_id: session.series_id,
                            occurrence: session.occurrence,
                            title: session.title.clone(),
                            starts_at: session.local_start.clone(),
                            remind_at,
                        });
                    }
                }
            }
        }
        reminders.sort_by_key(|r| r.remind_at);
        Ok(reminders)
    }
}

/// The setting that says in which epoch a circle's facilitators were last
/// read from the server.
fn facilitators_read_at(circle: &CircleId) -> String {
    format!("facilitators-read-at:{circle}")
}
