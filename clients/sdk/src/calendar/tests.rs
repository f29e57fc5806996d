//! The fold, told as stories: a circle's twelve weeks, and the hours a
//! Berlin circle keeps for a member in New York across daylight-saving time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use jiff::civil::{date, time};

fn device() -> DeviceId {
    DeviceId::from_uuid(Uuid::new_v4())
}

fn item(seq: u64, sender: DeviceId, content: Content) -> CalendarItem {
    CalendarItem {
        seq,
        sender,
        content,
    }
}

fn series(first: Date, zone: &str, every_weeks: u8, count: u16) -> Series {
    Series {
        first_date: first,
        start_time: time(18, 0, 0, 0),
        time_zone: zone.into(),
        duration_minutes: 90,
        every_weeks,
        count: Some(count),
        until: None,
        title: Some("Thursday circle".into()),
        agenda: None,
        video_room: true,
    }
}

fn scheduled(sender: DeviceId, series_id: Uuid, series: Series) -> CalendarItem {
    item(
        1,
        sender,
        Content::SessionSeries {
            id: Uuid::new_v4(),
            series_id,
            series,
        },
    )
}

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

#[test]
fn twelve_weeks_with_a_move_a_cancellation_a_pass_and_attendance() {
    let (alice, sam, kim) = (device(), device(), device());
    let id = Uuid::new_v4();
    let first = date(2027, 1, 7);
    let change = |seq, change| {
        item(
            seq,
            alice,
            Content::SessionChange {
                id: Uuid::new_v4(),
                series_id: id,
                change,
            },
        )
    };
    let items = vec![
        scheduled(alice, id, series(first, "Europe/Berlin", 1, 12)),
        change(
            2,
            SeriesChange::MoveOccurrence {
                occurrence: date(2027, 1, 14),
                date: date(2027, 1, 15),
                start_time: time(19, 30, 0, 0),
                duration_minutes: Some(60),
            },
        ),
        change(
            3,
            SeriesChange::CancelOccurrence {
                occurrence: date(2027, 1, 21),
            },
        ),
        item(
            4,
            sam,
            Content::Rsvp {
                id: Uuid::new_v4(),
                series_id: id,
                occurrence: first,
                answer: RsvpAnswer::Passing,
                note: None,
            },
        ),
        item(
            5,
            alice,
            Content::Attendance {
                id: Uuid::new_v4(),
                series_id: id,
                occurrence: first,
                present: vec![alice],
                expected: Vec::new(),
            },
        ),
    ];
    let calendar = fold(items, &[alice], &[sam, kim], &tz("Europe/Berlin"));
    assert_eq!(calendar.sessions.len(), 12);
    let last = calendar.sessions.last().unwrap();
    assert_eq!(last.occurrence, date(2027, 3, 25), "twelve Thursdays");

    let moved = &calendar.sessions[1];
    assert!(moved.moved && !moved.cancelled);
    assert_eq!(
        moved.occurrence,
        date(2027, 1, 14),
        "named by its first date"
    );
    assert_eq!(
        (moved.start.date(), moved.start.hour(), moved.start.minute()),
        (date(2027, 1, 15), 19, 30)
    );
    assert_eq!(moved.duration_minutes, 60);
    assert!(calendar.sessions[2].cancelled);

    let opening = &calendar.sessions[0];
    assert_eq!(opening.rsvps[&sam].answer, RsvpAnswer::Passing);
    assert_eq!(
        opening.missed,
        [kim],
        "sam passed, so only kim missed the first session"
    );
    assert!(calendar.sessions[3].present.is_none());
}

/// The start hours of a series' sessions at home and in `viewer`.
fn hours(series: Series, viewer: &str) -> (Vec<i8>, Vec<i8>) {
    let alice = device();
    let calendar = fold(
        vec![scheduled(alice, Uuid::new_v4(), series)],
        &[alice],
        &[],
        &tz(viewer),
    );
    let sessions = calendar.sessions.iter();
    let home = sessions.clone().map(|s| s.start.hour()).collect();
    (home, sessions.map(|s| s.local_start.hour()).collect())
}

#[test]
fn a_berlin_circle_moves_by_an_hour_for_new_york_only_while_one_zone_has_changed() {
    let autumn = series(date(2026, 10, 15), "Europe/Berlin", 1, 4);
    let (berlin, new_york) = hours(autumn, "America/New_York");
    assert_eq!(berlin, [18, 18, 18, 18], "always 18:00 in Berlin");
    // Europe leaves summer time on 25 October 2026, the US on 1 November.
    assert_eq!(new_york, [12, 12, 13, 12]);

    // And in spring 2027: the US on 14 March, Europe on 28 March.
    let spring = series(date(2027, 3, 11), "Europe/Berlin", 1, 4);
    assert_eq!(hours(spring, "America/New_York").1, [12, 13, 13, 12]);
}

#[test]
fn a_new_york_series_keeps_its_hour_at_home_across_the_change() {
    let alice = device();
    let mut weekly = series(date(2026, 10, 22), "America/New_York", 1, 3);
    weekly.start_time = time(19, 0, 0, 0);
    let (at_home, in_berlin) = hours(weekly.clone(), "Europe/Berlin");
    let calendar = fold(
        vec![scheduled(alice, Uuid::new_v4(), weekly)],
        &[alice],
        &[],
        &tz("Europe/Berlin"),
    );
    assert_eq!(at_home, [19, 19, 19]);
    assert_eq!(
        in_berlin,
        [1, 0, 1],
        "22 Oct, 29 Oct, 5 Nov, each the next day in Berlin"
    );
    let hours = |s: &Session| s.start.timestamp().as_second();
    assert_eq!(
        hours(&calendar.sessions[2]) - hours(&calendar.sessions[1]),
        7 * 24 * 3600 + 3600,
        "the week of the change is an hour longer"
    );
}

#[test]
fn only_facilitators_schedule_and_a_series_can_change_from_an_occurrence_on() {
    let (alice, sam) = (device(), device());
    let id = Uuid::new_v4();
    let first = date(2027, 1, 7);
    let from_sam = scheduled(sam, Uuid::new_v4(), series(first, "Europe/Berlin", 1, 3));
    let biweekly = series(first, "Europe/Berlin", 2, 6);
    let weekly_from_march = series(date(2027, 3, 4), "Europe/Berlin", 1, 4);
    let items = vec![
        scheduled(alice, id, biweekly),
        from_sam,
        item(
            2,
            alice,
            Content::SessionChange {
                id: Uuid::new_v4(),
                series_id: id,
                change: SeriesChange::ChangeFrom {
                    occurrence: date(2027, 3, 4),
                    series: weekly_from_march,
                },
            },
        ),
    ];
    let calendar = fold(items, &[alice], &[sam], &tz("UTC"));
    let dates: Vec<Date> = calendar.sessions.iter().map(|s| s.occurrence).collect();
    assert_eq!(
        dates,
        [
            date(2027, 1, 7),
            date(2027, 1, 21),
            date(2027, 2, 4),
            date(2027, 2, 18),
            date(2027, 3, 4),
            date(2027, 3, 11),
            date(2027, 3, 18),
            date(2027, 3, 25),
        ],
        "four every two weeks, then weekly; the member's series is ignored"
    );
}

#[test]
fn the_agreement_is_accepted_by_version_and_a_new_text_asks_again() {
    let (alice, sam, kim) = (device(), device(), device());
    let agreement = |seq, text: &str| {
        item(
            seq,
            alice,
            Content::Agreement {
                id: Uuid::new_v4(),
                text: text.into(),
            },
        )
    };
    let accept = |seq, who, text: &str| {
        item(
            seq,
            who,
            Content::AgreementAccepted {
                id: Uuid::new_v4(),
                version: agreement_version(text),
            },
        )
    };
    let items = vec![
        agreement(1, "What is said here stays here."),
        accept(2, sam, "What is said here stays here."),
    ];
    let view = fold(items.clone(), &[alice], &[sam, kim], &tz("UTC"))
        .agreement
        .unwrap();
    assert_eq!(view.pending, [kim]);
    assert!(view.accepted_by.contains(&sam));

    let mut revised = items;
    revised.push(agreement(3, "What is said here stays here. Phones away."));
    let view = fold(revised, &[alice], &[sam, kim], &tz("UTC"))
        .agreement
        .unwrap();
    assert_eq!(
        view.pending,
        [sam, kim],
        "a new version asks everyone again"
    );
}

#[test]
fn a_late_joiner_missed_nothing_before_and_a_move_to_no_length_is_ignored() {
    let (alice, sam, kim, lee) = (device(), device(), device(), device());
    let id = Uuid::new_v4();
    let first = date(2027, 3, 18);
    let attendance = |seq, occurrence, expected: Vec<DeviceId>| {
        item(
            seq,
            alice,
            Content::Attendance {
                id: Uuid::new_v4(),
                series_id: id,
                occurrence,
                present: vec![alice, sam],
                expected,
            },
        )
    };
    let items = vec![
        scheduled(alice, id, series(first, "Europe/Berlin", 1, 3)),
        // Another client's move to a session of no length: not a session.
        item(
            2,
            alice,
            Content::SessionChange {
                id: Uuid::new_v4(),
                series_id: id,
                change: SeriesChange::MoveOccurrence {
                    occurrence: first,
                    date: first,
                    start_time: time(19, 0, 0, 0),
                    duration_minutes: Some(0),
                },
            },
        ),
        // Recorded while Sam and Kim were the members; Lee came later.
        attendance(3, first, vec![sam, kim]),
        // An earlier client's record says nobody was expected: the circle's
        // members now are.
        attendance(4, date(2027, 3, 25), Vec::new()),
    ];
    let calendar = fold(items, &[alice], &[sam, kim, lee], &tz("UTC"));
    let first_session = &calendar.sessions[0];
    assert!(!first_session.moved, "a zero-minute move is ignored");
    assert_eq!(first_session.duration_minutes, 90);
    assert_eq!(
        first_session.missed,
        vec![kim],
        "not Lee, who was not there yet"
    );
    let mut second = calendar.sessions[1].missed.clone();
    second.sort();
    let mut expected = vec![kim, lee];
    expected.sort();
    assert_eq!(second, expected);
    assert_eq!(
        first_session.scheduled_start, first_session.start,
        "never moved"
    );
}
