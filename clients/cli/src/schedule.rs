//! `hearth sessions`, `schedule`, `move`, `cancel`, `rsvp`, `attendance`,
//! `missed`, `agreement` and `check-in`: the circle's calendar from the
//! command line. All of it is encrypted; the server learns no session time
//! from it (it sees call-token requests, as the README says).

use crate::say;
use anyhow::{Result, bail};
use clap::Subcommand;
use hearth_client::{Client, Session};
use hearth_protocol::schedule::{RsvpAnswer, Series, SeriesChange};
use hearth_protocol::{CircleId, DeviceId};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use uuid::Uuid;
use views::*;

mod views;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Schedule a session series (facilitators).
    Schedule {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The first session's local date and time, e.g. 2027-01-07T18:00.
        #[arg(long, value_parser = date_and_time)]
        first: DateTime,
        /// Its IANA time zone, e.g. Europe/Berlin (default: this machine's).
        #[arg(long)]
        tz: Option<String>,
        /// Repeat every N weeks (1: weekly, 2: every two weeks).
        #[arg(long, default_value_t = 1)]
        every: u8,
        /// How many sessions (default 12).
        #[arg(long, conflicts_with = "until")]
        count: Option<u16>,
        /// The last date a session may fall on, instead of a count.
        #[arg(long)]
        until: Option<Date>,
        /// Minutes per session (15 to 240).
        #[arg(long, default_value_t = 90)]
        minutes: u16,
        /// A title.
        #[arg(long)]
        title: Option<String>,
        /// An agenda.
        #[arg(long)]
        agenda: Option<String>,
        /// Meet in the circle's video room.
        #[arg(long)]
        video: bool,
    },
    /// The circle's sessions, in local time, with RSVPs.
    Sessions {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// Show times in this zone (default: this machine's).
        #[arg(long)]
        tz: Option<String>,
    },
    /// Move one session (facilitators).
    Move {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The series.
        series: Uuid,
        /// The session: the date `sessions` shows it on, or the date the
        /// series first gave it.
        occurrence: Date,
        /// The new local date and time, in the series' zone.
        #[arg(long, value_parser = date_and_time)]
        to: DateTime,
        /// A new length in minutes (15 to 240).
        #[arg(long)]
        minutes: Option<u16>,
    },
    /// Cancel one session, every session from one on (--onward), or with no
    /// date the whole series (facilitators).
    Cancel {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The series.
        series: Uuid,
        /// The session: the date `sessions` shows it on, or the date the
        /// series first gave it.
        occurrence: Option<Date>,
        /// Cancel that session and every one after it.
        #[arg(long, requires = "occurrence")]
        onward: bool,
    },
    /// Say whether you are coming: `yes`, or `pass` (no reason needed).
    /// Everyone in the circle reads the answer and its note.
    Rsvp {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The series.
        series: Uuid,
        /// The session: the date `sessions` shows it on, or the date the
        /// series first gave it.
        occurrence: Date,
        /// yes or pass.
        answer: String,
        /// An optional note (everyone in the circle reads it).
        #[arg(long)]
        note: Option<String>,
    },
    /// Record who was present at a session (facilitators).
    Attendance {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The series.
        series: Uuid,
        /// The session: the date `sessions` shows it on, or the date the
        /// series first gave it.
        occurrence: Date,
        /// Who was present: names as `hearth members` shows them, or device
        /// ids.
        #[arg(allow_hyphen_values = true)]
        present: Vec<String>,
    },
    /// Who missed sessions (present neither in person nor by passing).
    Missed {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// The circle agreement: set, show, accept.
    #[command(subcommand)]
    Agreement(AgreementCommand),
    /// Check-ins between sessions: prompt, reply, show.
    #[command(subcommand, name = "check-in")]
    CheckIn(CheckInCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// Set the agreement's text (facilitators).
    Set {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The text.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Show the agreement and who has not accepted it.
    Show {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Accept the current agreement.
    Accept {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckInCommand {
    /// Ask the circle how they are (facilitators).
    Prompt {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The prompt.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Reply to a prompt with a mood from 1 (low) to 5 (good). Everyone in
    /// the circle reads the mood and the line.
    Reply {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The prompt.
        prompt: Uuid,
        /// 1 to 5.
        mood: u8,
        /// An optional line (everyone in the circle reads it).
        #[arg(long)]
        line: Option<String>,
    },
    /// Prompts and replies.
    Show {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
}

/// A local date and time; a date alone is refused rather than taken as
/// midnight.
fn date_and_time(text: &str) -> Result<DateTime, String> {
    if !text.contains(['T', 't', ' ']) {
        return Err("give a date and a time, e.g. 2027-01-07T18:00".to_owned());
    }
    text.parse::<DateTime>().map_err(|_| {
        "not a date and time such as 2027-01-07T18:00 (a real date, 24-hour time)".to_owned()
    })
}

/// The session of the series a person means by `date` (its name, or the
/// date it falls on here).
async fn occurrence_of(
    client: &Client,
    circle: &CircleId,
    series: Uuid,
    date: Date,
) -> Result<Date> {
    Ok(client
        .find_session(circle, series, date, &TimeZone::system())
        .await?
        .occurrence)
}

fn zone(name: Option<&str>) -> Result<TimeZone> {
    Ok(match name {
        Some(name) => TimeZone::get(name)?,
        None => TimeZone::system(),
    })
}

fn session_line(session: &Session, name: &dyn Fn(&DeviceId) -> String) -> String {
    let status = if session.cancelled {
        "  CANCELLED"
    } else if session.moved {
        "  moved"
    } else {
        ""
    };
    let answered = |answer: RsvpAnswer| {
        let who: Vec<String> = session
            .rsvps
            .iter()
            .filter(|(_, r)| r.answer == answer)
            .map(|(d, r)| match &r.note {
                Some(note) => format!("{} ({note})", name(d)),
                None => name(d),
            })
            .collect();
        if who.is_empty() {
            "nobody".to_owned()
        } else {
            who.join(", ")
        }
    };
    let local_date = session.local_start.date();
    let named = if local_date == session.occurrence {
        String::new()
    } else {
        format!(" (named {})", session.occurrence)
    };
    format!(
        "{}  {}  {} min  {}  series {}{named}  coming: {}; passing: {}{status}",
        session.local_start.strftime("%a %Y-%m-%d %H:%M %Z"),
        session.title.as_deref().unwrap_or("session"),
        session.duration_minutes,
        if session.video_room { "video" } else { "" },
        session.series_id,
        answered(RsvpAnswer::Coming),
        answered(RsvpAnswer::Passing),
    )
}

/// Runs a scheduling command.
pub async fn run(client: &Client, command: ScheduleCommand, j: bool) -> Result<()> {
    match command {
        ScheduleCommand::Schedule {
            circle,
            first,
            tz,
            every,
            count,
            until,
            minutes,
            title,
            agenda,
            video,
        } => {
            let time_zone = match tz {
                Some(tz) => tz,
                None => match TimeZone::system().iana_name() {
                    Some(name) => name.to_owned(),
                    None => bail!("this machine's time zone has no IANA name: pass --tz"),
                },
            };
            let series = Series {
                first_date: first.date(),
                start_time: first.time(),
                time_zone,
                duration_minutes: minutes,
                every_weeks: every,
                count,
                until,
                title,
                agenda,
                video_room: video,
            };
            let series_id = client.schedule_series(&circle, series).await?;
            say(
                j,
                &done(
                    SeriesScheduled { series_id },
                    format!("scheduled series {series_id}"),
                ),
            );
        }
        ScheduleCommand::Sessions { circle, tz } => {
            let calendar = client.calendar_in(&circle, &zone(tz.as_deref())?).await?;
            let names = client.names(&circle).await?;
            let name = |d: &DeviceId| names.get(d).cloned().unwrap_or_else(|| d.to_string());
            let sessions = Sessions {
                sessions: calendar.sessions.iter().map(SessionView::of).collect(),
                lines: calendar
                    .sessions
                    .iter()
                    .map(|s| session_line(s, &name))
                    .collect(),
            };
            say(j, &sessions);
        }
        ScheduleCommand::Move {
            circle,
            series,
            occurrence,
            to,
            minutes,
        } => {
            let occurrence = occurrence_of(client, &circle, series, occurrence).await?;
            let change = SeriesChange::MoveOccurrence {
                occurrence,
                date: to.date(),
                start_time: to.time(),
                duration_minutes: minutes,
            };
            client.change_series(&circle, series, change).await?;
            say(
                j,
                &done(
                    Moved {
                        moved: occurrence.to_string(),
                    },
                    "moved",
                ),
            );
        }
        ScheduleCommand::Cancel {
            circle,
            series,
            occurrence,
            onward,
        } => {
            let change = match occurrence {
                Some(date) if onward => SeriesChange::CancelFrom {
                    occurrence: occurrence_of(client, &circle, series, date).await?,
                },
                Some(date) => SeriesChange::CancelOccurrence {
                    occurrence: occurrence_of(client, &circle, series, date).await?,
                },
                None => SeriesChange::CancelSeries,
            };
            let (cancelled, text) = match &change {
                SeriesChange::CancelOccurrence { occurrence } => (
                    CancelledWhat::Occurrence(occurrence.to_string()),
                    format!("cancelled the session {occurrence}"),
                ),
                SeriesChange::CancelFrom { occurrence } => (
                    CancelledWhat::From {
                        from: occurrence.to_string(),
                    },
                    format!("cancelled every session from {occurrence} on"),
                ),
                _ => (
                    CancelledWhat::Series("series"),
                    "cancelled the whole series".to_owned(),
                ),
            };
            client.change_series(&circle, series, change).await?;
            say(j, &done(Cancelled { cancelled }, text));
        }
        ScheduleCommand::Rsvp {
            circle,
            series,
            occurrence,
            answer,
            note,
        } => {
            let answer = match answer.as_str() {
                "yes" | "coming" => RsvpAnswer::Coming,
                "pass" | "no" => RsvpAnswer::Passing,
                other => bail!("answer yes or pass, not {other:?}"),
            };
            let occurrence = occurrence_of(client, &circle, series, occurrence).await?;
            client
                .rsvp(&circle, series, occurrence, answer, note.as_deref())
                .await?;
            say(
                j,
                &done(
                    Answered {
                        answer,
                        occurrence: occurrence.to_string(),
                    },
                    "answered",
                ),
            );
        }
        ScheduleCommand::Attendance {
            circle,
            series,
            occurrence,
            present,
        } => {
            let occurrence = occurrence_of(client, &circle, series, occurrence).await?;
            let named: Vec<&str> = present.iter().map(String::as_str).collect();
            let devices = crate::resolve(client, &circle, &named).await?;
            client
                .record_attendance(&circle, series, occurrence, &devices)
                .await?;
            let text = format!("recorded {} present", devices.len());
            say(
                j,
                &done(
                    Recorded {
                        present: devices,
                        occurrence: occurrence.to_string(),
                    },
                    text,
                ),
            );
        }
        ScheduleCommand::Missed { circle } => {
            let calendar = client.calendar(&circle).await?;
            let names = client.names(&circle).await?;
            let name = |d: &DeviceId| names.get(d).cloned().unwrap_or_else(|| d.to_string());
            let missed: Vec<&Session> = calendar
                .sessions
                .iter()
                .filter(|s| !s.missed.is_empty())
                .collect();
            let report = Missed {
                missed: missed
                    .iter()
                    .map(|s| MissedView {
                        series_id: s.series_id,
                        occurrence: s.occurrence.to_string(),
                        start: s.local_start.to_string(),
                        missed: s.missed.clone(),
                    })
                    .collect(),
                lines: missed
                    .iter()
                    .map(|s| {
                        let who: Vec<String> = s.missed.iter().map(name).collect();
                        format!(
                            "{} (series {}): {}",
                            s.local_start.strftime("%a %Y-%m-%d"),
                            s.series_id,
                            who.join(", ")
                        )
                    })
                    .collect(),
            };
            say(j, &report);
        }
        ScheduleCommand::Agreement(command) => agreement(client, command, j).await?,
        ScheduleCommand::CheckIn(command) => check_in(client, command, j).await?,
    }
    Ok(())
}

async fn agreement(client: &Client, command: AgreementCommand, j: bool) -> Result<()> {
    match command {
        AgreementCommand::Set { circle, text } => {
            let version = client.set_agreement(&circle, &text.join(" ")).await?;
            say(
                j,
                &done(
                    AgreementSet {
                        version: version.clone(),
                    },
                    format!("agreement {version}"),
                ),
            );
        }
        AgreementCommand::Show { circle } => {
            let calendar = client.calendar(&circle).await?;
            let names = client.names(&circle).await?;
            let text = match &calendar.agreement {
                None => "no agreement yet".to_owned(),
                Some(a) => {
                    let pending: Vec<String> = a
                        .pending
                        .iter()
                        .map(|d| names.get(d).cloned().unwrap_or_else(|| d.to_string()))
                        .collect();
                    if pending.is_empty() {
                        format!("{}\n\neveryone has accepted it", a.text)
                    } else {
                        format!("{}\n\nnot accepted yet: {}", a.text, pending.join(", "))
                    }
                }
            };
            let agreement = calendar.agreement.as_ref().map(|a| AgreementView {
                version: a.version.clone(),
                text: a.text.clone(),
                accepted_by: a.accepted_by.iter().copied().collect(),
                pending: a.pending.clone(),
            });
            say(j, &AgreementShown { agreement, text });
        }
        AgreementCommand::Accept { circle } => {
            let accepted = client.accept_agreement(&circle).await?;
            say(j, &done(AgreementAccepted { accepted }, "accepted"));
        }
    }
    Ok(())
}

async fn check_in(client: &Client, command: CheckInCommand, j: bool) -> Result<()> {
    match command {
        CheckInCommand::Prompt { circle, text } => {
            let prompt_id = client.prompt_check_in(&circle, &text.join(" ")).await?;
            say(
                j,
                &done(Prompted { prompt_id }, format!("prompt {prompt_id}")),
            );
        }
        CheckInCommand::Reply {
            circle,
            prompt,
            mood,
            line,
        } => {
            client
                .reply_check_in(&circle, prompt, mood, line.as_deref())
                .await?;
            say(j, &done(Replied { replied: prompt }, "replied"));
        }
        CheckInCommand::Show { circle } => {
            let calendar = client.calendar(&circle).await?;
            let names = client.names(&circle).await?;
            let name = |d: &DeviceId| names.get(d).cloned().unwrap_or_else(|| d.to_string());
            let mut lines = Vec::new();
            for c in &calendar.check_ins {
                lines.push(format!("{}  {}", c.id, c.text));
                if c.replies.is_empty() {
                    lines.push("  no replies yet".to_owned());
                }
                for (device, (mood, line)) in &c.replies {
                    let line = line
                        .as_deref()
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default();
                    lines.push(format!("  {} {mood}/5{line}", name(device)));
                }
            }
            let check_ins = calendar
                .check_ins
                .iter()
                .map(|c| CheckInView {
                    prompt_id: c.id,
                    text: c.text.clone(),
                    replies: c
                        .replies
                        .iter()
                        .map(|(d, (mood, line))| ReplyView {
                            device_id: *d,
                            mood: *mood,
                            line: line.clone(),
                        })
                        .collect(),
                })
                .collect();
            say(j, &CheckIns { check_ins, lines });
        }
    }
    Ok(())
}
