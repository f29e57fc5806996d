//! Circles meet: sessions scheduled, moved and cancelled, RSVPs with the
//! right to pass, attendance and who missed, the agreement, check-ins, and
//! the snapshot that lets a member who joins late see it all. Real SDK
//! clients, real MLS; the server sees only ciphertext.

use anyhow::{Result, bail};
use hearth_client::ClientError;
use hearth_protocol::circles::{Accepted, PutSnapshot, Snapshot};
use hearth_protocol::content::Content;
use hearth_protocol::schedule::{RsvpAnswer, Series, SeriesChange};
use hearth_protocol::{Base64Bytes, ErrorCode};
use hearth_tests::clients::{client, data_dirs, enrolled, join};
use hearth_tests::mls::{Member, strangers_and_the_removed_get_404};
use hearth_tests::{TestApp, expect_error, on_both_databases};
use jiff::civil::{Date, time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};

on_both_databases!(
    a_facilitator_schedules_twelve_weeks_and_every_calendar_agrees,
    a_member_who_joins_in_week_five_sees_the_series_and_the_agreement,
    a_members_schedule_is_ignored_by_every_client,
    a_facilitators_phone_and_laptop_both_keep_the_calendar,
    a_members_new_laptop_sees_the_sessions_once_a_facilitator_has_synced,
    check_ins_are_apart_from_the_conversation,
    the_snapshot_slot_takes_one_writer_per_version_and_only_facilitators,
);

/// Days from today (UTC).
fn in_days(days: i64) -> Result<Date> {
    let today = Timestamp::now().to_zoned_datetime(TimeZone::UTC).date();
    Ok(today.checked_add(Span::new().days(days))?)
}

fn weekly(first: Date) -> Series {
    Series {
        first_date: first,
        start_time: time(18, 0, 0, 0),
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 90,
        every_weeks: 1,
        count: None,
        until: None,
        title: Some("Thursday circle".into()),
        agenda: Some("A round of check-ins, then the theme".into()),
        video_room: true,
    }
}

async fn a_facilitator_schedules_twelve_weeks_and_every_calendar_agrees(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam, kim] = &clients[..] else {
        bail!("three clients")
    };
    let (alice_id, kim_id) = (alice.device_id().await?, kim.device_id().await?);
    let first = in_days(2)?;
    let (second, third) = (
        first.checked_add(Span::new().weeks(1))?,
        first.checked_add(Span::new().weeks(2))?,
    );
    let series = alice.schedule_series(&circle, weekly(first)).await?;
    alice
        .change_series(
            &circle,
            series,
            SeriesChange::MoveOccurrence {
                occurrence: second,
                date: second,
                start_time: time(19, 30, 0, 0),
                duration_minutes: None,
            },
        )
        .await?;
    alice
        .change_series(
            &circle,
            series,
            SeriesChange::CancelOccurrence { occurrence: third },
        )
        .await?;
    sam.rsvp(&circle, series, first, RsvpAnswer::Passing, None)
        .await?;
    kim.rsvp(
        &circle,
        series,
        first,
        RsvpAnswer::Coming,
        Some("five minutes late"),
    )
    .await?;
    let present: Vec<_> = alice_id.into_iter().collect();
    alice
        .record_attendance(&circle, series, first, &present)
        .await?;

    let berlin = TimeZone::get("Europe/Berlin")?;
    let mut calendars = Vec::new();
    for c in &clients {
        calendars.push(c.calendar_in(&circle, &berlin).await?);
    }
    assert!(
        calendars
            .iter()
            .all(|c| c.sessions == calendars[0].sessions),
        "everyone's calendar agrees"
    );
    let sessions = &calendars[0].sessions;
    assert_eq!(sessions.len(), 12, "twelve weeks by default");
    assert!(
        sessions
            .iter()
            .all(|s| s.video_room && s.duration_minutes == 90)
    );
    assert_eq!(sessions[0].start.hour(), 18);
    assert!(sessions[1].moved);
    assert_eq!(
        (sessions[1].start.hour(), sessions[1].start.minute()),
        (19, 30)
    );
    assert!(sessions[2].cancelled);
    assert_eq!(sessions[0].rsvps.len(), 2);
    assert_eq!(
        sessions[0].missed,
        kim_id.into_iter().collect::<Vec<_>>(),
        "sam passed, kim said yes and did not come"
    );

    // Only facilitators schedule.
    let refused = sam.schedule_series(&circle, weekly(first)).await;
    assert!(matches!(refused, Err(ClientError::NotFacilitator)));
    let too_short = Series {
        duration_minutes: 5,
        ..weekly(first)
    };
    let refused = alice.schedule_series(&circle, too_short).await;
    assert!(matches!(refused, Err(ClientError::InvalidSchedule(_))));

    // Reminders stay on the phone: 24 hours and 15 minutes before each of
    // the next two weeks' sessions.
    let horizon = SignedDuration::from_hours(24 * 14);
    let reminders = kim.upcoming_reminders(horizon).await?;
    let now = Timestamp::now();
    assert!(!reminders.is_empty());
    assert!(reminders.iter().all(|r| r.remind_at >= now));
    assert!(
        reminders
            .windows(2)
            .all(|w| w[0].remind_at <= w[1].remind_at)
    );
    assert!(
        reminders.iter().all(|r| r.occurrence != third),
        "not the cancelled one"
    );
    let passing = sam.upcoming_reminders(horizon).await?;
    assert!(
        passing.iter().all(|r| r.occurrence != first),
        "no reminder for a session passed on"
    );
    Ok(())
}

async fn a_member_who_joins_in_week_five_sees_the_series_and_the_agreement(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let [alice, sam] = &clients[..] else {
        bail!("two clients")
    };
    let first = in_days(-28)?;
    let series = alice.schedule_series(&circle, weekly(first)).await?;
    let moved = first.checked_add(Span::new().weeks(6))?;
    alice
        .change_series(
            &circle,
            series,
            SeriesChange::MoveOccurrence {
                occurrence: moved,
                date: moved,
                start_time: time(17, 0, 0, 0),
                duration_minutes: Some(60),
            },
        )
        .await?;
    let version = alice
        .set_agreement(&circle, "What is said in the circle stays in the circle.")
        .await?;
    assert_eq!(sam.accept_agreement(&circle).await?, version);

    // Week five: Kim joins. Kim cannot decrypt anything from before.
    let kim = client(&app, &dirs[2]).await?;
    kim.register(None).await?;
    join(alice, &kim, &circle).await?;
    let kim_id = kim.device_id().await?.expect("registered");
    let calendar = kim.calendar(&circle).await?;
    assert_eq!(calendar.sessions.len(), 12, "the whole series");
    let changed = calendar
        .sessions
        .iter()
        .find(|s| s.occurrence == moved)
        .expect("the moved session");
    assert!(changed.moved && changed.duration_minutes == 60);
    let agreement = calendar.agreement.expect("the agreement");
    assert_eq!(agreement.version, version);
    assert_eq!(agreement.pending, [kim_id], "sam accepted; kim is asked to");

    kim.accept_agreement(&circle).await?;
    let seen_by_alice = alice.calendar(&circle).await?.agreement.expect("agreement");
    assert!(seen_by_alice.pending.is_empty());
    Ok(())
}

async fn a_members_schedule_is_ignored_by_every_client(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam, _] = &clients[..] else {
        bail!("three clients")
    };
    // Sam's app sends a series anyway, past the SDK's own check.
    let forged = Content::SessionSeries {
        id: uuid::Uuid::new_v4(),
        series_id: uuid::Uuid::new_v4(),
        series: weekly(in_days(3)?),
    };
    sam.send(&circle, forged).await?;
    let agreement = Content::Agreement {
        id: uuid::Uuid::new_v4(),
        text: "Sam's rules".into(),
    };
    sam.send(&circle, agreement).await?;
    for c in &clients {
        let calendar = c.calendar(&circle).await?;
        assert!(
            calendar.sessions.is_empty(),
            "no client takes a member's series"
        );
        assert!(calendar.agreement.is_none());
    }
    // The facilitator's own schedule still counts.
    alice.schedule_series(&circle, weekly(in_days(3)?)).await?;
    assert_eq!(sam.calendar(&circle).await?.sessions.len(), 12);
    Ok(())
}

async fn a_facilitators_phone_and_laptop_both_keep_the_calendar(app: TestApp) -> Result<()> {
    let dirs = data_dirs(4)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let [phone, sam] = &clients[..] else {
        bail!("two clients")
    };
    let laptop = client(&app, &dirs[2]).await?;
    laptop.register(Some(&phone.link_token().await?)).await?;
    phone.add_my_other_devices().await?;
    assert_eq!(laptop.accept_welcomes().await?, vec![circle.clone()]);

    // Both devices change the calendar at once; both snapshot writes land,
    // one after rebuilding on the other's version.
    let (scheduled, agreed) = tokio::join!(
        phone.schedule_series(&circle, weekly(in_days(4)?)),
        laptop.set_agreement(&circle, "Phones away during sessions."),
    );
    scheduled?;
    let version = agreed?;

    let kim = client(&app, &dirs[3]).await?;
    kim.register(None).await?;
    join(&laptop, &kim, &circle).await?;
    let calendar = kim.calendar(&circle).await?;
    assert_eq!(calendar.sessions.len(), 12, "the phone's series");
    assert_eq!(
        calendar.agreement.map(|a| a.version),
        Some(version),
        "the laptop's agreement"
    );
    assert_eq!(sam.calendar(&circle).await?.sessions.len(), 12);
    Ok(())
}

async fn a_members_new_laptop_sees_the_sessions_once_a_facilitator_has_synced(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let [alice, sam] = &clients[..] else {
        bail!("two clients")
    };
    let series = alice.schedule_series(&circle, weekly(in_days(7)?)).await?;
    sam.rsvp(&circle, series, in_days(7)?, RsvpAnswer::Passing, None)
        .await?;
    // Sam links a laptop; his phone brings it into the circle (a commit of
    // Sam's, not the facilitator's, at an epoch the snapshot predates).
    let laptop = client(&app, &dirs[2]).await?;
    laptop.register(Some(&sam.link_token().await?)).await?;
    sam.sync(&circle).await?;
    assert_eq!(
        laptop.accept_welcomes().await?,
        std::slice::from_ref(&circle)
    );
    // Alice changes nothing; her app merely catches up.
    alice.sync(&circle).await?;
    let calendar = laptop.calendar(&circle).await?;
    assert_eq!(calendar.sessions.len(), 12, "the laptop sees the series");
    let sam_id = sam.device_id().await?.expect("registered");
    assert_eq!(
        calendar.sessions[0].rsvps.get(&sam_id).map(|r| r.answer),
        Some(RsvpAnswer::Passing),
        "and Sam's own answer from his phone"
    );
    Ok(())
}

async fn check_ins_are_apart_from_the_conversation(app: TestApp) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let [alice, sam] = &clients[..] else {
        bail!("two clients")
    };
    let prompt = alice.prompt_check_in(&circle, "How was your week?").await?;
    sam.reply_check_in(&circle, prompt, 2, Some("a hard one"))
        .await?;
    let refused = sam.reply_check_in(&circle, prompt, 9, None).await;
    assert!(matches!(refused, Err(ClientError::InvalidCheckIn(_))));
    let sam_id = sam.device_id().await?.expect("registered");
    let check_ins = alice.calendar(&circle).await?.check_ins;
    assert_eq!(check_ins.len(), 1);
    assert_eq!(check_ins[0].text, "How was your week?");
    assert_eq!(
        check_ins[0].replies[&sam_id],
        (2, Some("a hard one".to_owned()))
    );
    assert!(
        alice.history(&circle).await?.is_empty(),
        "check-ins are not messages"
    );
    Ok(())
}

async fn the_snapshot_slot_takes_one_writer_per_version_and_only_facilitators(
    app: TestApp,
) -> Result<()> {
    let mut facilitator = Member::sign_up(&app).await?;
    let mut sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 2).await?;
    let circle = facilitator.create_circle(&app).await?;
    let add = facilitator.add_commit(&app, &[&sam]).await?;
    let _: Accepted = facilitator.commit_accepted(&app, &circle, &add).await?;
    sam.join(&app).await?;
    let url = format!("/v1/circles/{circle}/snapshot");
    let put = |version: u64, bytes: &[u8]| PutSnapshot {
        version,
        snapshot: Base64Bytes::from(bytes.to_vec()),
    };

    expect_error(
        app.get(&url, facilitator.token()).await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    let (one, two) = (put(0, b"one"), put(0, b"two"));
    let (first, second) = tokio::join!(
        app.put_json(&url, facilitator.token(), &one),
        app.put_json(&url, facilitator.token(), &two),
    );
    let (first, second) = (first?, second?);
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 409],
        "exactly one of two writes of version 0 lands"
    );
    let loser = if first.status() == 409 { first } else { second };
    let body = expect_error(loser, 409, ErrorCode::SnapshotConflict).await?;
    assert_eq!(body.current_version, Some(1));

    let read: Snapshot = app.get(&url, sam.token()).await?.json().await?;
    assert_eq!(read.version, 1);
    expect_error(
        app.put_json(&url, sam.token(), &put(1, b"sam's")).await?,
        403,
        ErrorCode::NotFacilitator,
    )
    .await?;
    let huge = vec![0u8; 64 * 1024 + 1];
    expect_error(
        app.put_json(&url, facilitator.token(), &put(1, &huge))
            .await?,
        413,
        ErrorCode::PayloadTooLarge,
    )
    .await?;
    // Strangers read no snapshot; once removed, neither does Sam.
    strangers_and_the_removed_get_404(&app, &mut facilitator, &sam, &circle, async |token| {
        app.get(&url, token).await
    })
    .await?;
    Ok(())
}
