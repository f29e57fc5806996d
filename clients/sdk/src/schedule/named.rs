//! What a calendar command names — a series, a session, a prompt — looked
//! up in the calendar this device holds, catching up only when it is not
//! found there.

use crate::calendar::{self, Calendar, Session};
use crate::{Client, ClientError, Result};
use hearth_protocol::{CircleId, DeviceId};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use uuid::Uuid;

impl Client {
    /// The calendar from what this device holds, without asking the server:
    /// what a command names is checked against it.
    pub(super) async fn held_calendar(&self, circle: &CircleId) -> Result<Calendar> {
        let everyone = self.members(circle).await?;
        let circle = circle.clone();
        self.with(move |s| {
            let facilitators = s.store.facilitators(&circle)?;
            let members: Vec<DeviceId> = everyone
                .into_iter()
                .filter(|d| !facilitators.contains(d))
                .collect();
            let items = s.store.calendar_items(&circle)?;
            Ok(calendar::fold(
                items,
                &facilitators,
                &members,
                &TimeZone::UTC,
            ))
        })
        .await
    }

    /// The calendar a command names things in: what this device holds when
    /// `found` finds what it names there (no request), else the calendar
    /// after catching up with the circle (what was named may have arrived
    /// since this device last looked).
    pub(super) async fn known_calendar_for(
        &self,
        circle: &CircleId,
        found: impl Fn(&Calendar) -> bool,
    ) -> Result<Calendar> {
        let held = self.held_calendar(circle).await?;
        if found(&held) {
            return Ok(held);
        }
        self.calendar_in(circle, &TimeZone::UTC).await
    }

    /// The session `occurrence` of the series, as this device knows the
    /// calendar.
    pub(super) async fn known_session(
        &self,
        circle: &CircleId,
        series_id: Uuid,
        occurrence: Date,
    ) -> Result<Session> {
        let named = |s: &Session| s.series_id == series_id && s.occurrence == occurrence;
        self.known_calendar_for(circle, |c| c.sessions.iter().any(named))
            .await?
            .sessions
            .into_iter()
            .find(named)
            .ok_or(ClientError::NoSuchSession)
    }

    /// The session of the series a person means by `date`: the session the
    /// series first gave that date (its name), or else the one session that
    /// starts on that date in `viewer`'s zone (a member in Sydney sees
    /// Thursday's Berlin session on Friday and may say Friday). From what
    /// this device holds, without asking the server.
    pub async fn find_session(
        &self,
        circle: &CircleId,
        series_id: Uuid,
        date: Date,
        viewer: &TimeZone,
    ) -> Result<Session> {
        let on = |s: &Session| {
            s.series_id == series_id
                && (s.occurrence == date || s.start.with_time_zone(viewer.clone()).date() == date)
        };
        let sessions: Vec<Session> = self
            .known_calendar_for(circle, |c| c.sessions.iter().any(on))
            .await?
            .sessions
            .into_iter()
            .filter(|s| s.series_id == series_id)
            .collect();
        if let Some(named) = sessions.iter().find(|s| s.occurrence == date) {
            return Ok(named.clone());
        }
        let mut local = sessions
            .into_iter()
            .filter(|s| s.start.with_time_zone(viewer.clone()).date() == date);
        match (local.next(), local.next()) {
            (Some(session), None) => Ok(session),
            _ => Err(ClientError::NoSuchSession),
        }
    }
}
