//! The SDK end to end: real clients with their own data directories, the
//! real server, real MLS.

use anyhow::Result;
use hearth_protocol::content::Content;
use hearth_tests::clients::{client, data_dirs, enrolled, lose_mls_state, texts};
use hearth_tests::{Db, TestApp, on_both_databases};
use std::collections::HashSet;

on_both_databases!(
    a_facilitator_invites_sam_who_joins_and_they_talk,
    a_client_restarted_from_its_data_directory_continues,
    two_members_updating_at_once_both_land_and_agree,
    sams_laptop_joins_his_circles_and_reads_along,
    a_full_circle_of_twelve_sees_one_conversation_in_one_order,
    a_removed_member_reads_nothing_new_and_the_rest_carry_on,
    a_member_offline_for_two_hundred_messages_catches_up_in_order,
    the_live_stream_decodes_messages_and_resumes_after_the_server_restarts,
    a_client_that_lost_its_mls_state_rejoins_by_itself,
    names_and_titles_travel_encrypted_and_reach_later_joiners,
    a_revoked_invite_stops_working_and_a_member_who_leaves_hears_nothing_more,
    sams_new_laptop_asking_by_invite_joins_without_its_twin,
    a_welcome_the_device_cannot_use_is_repaired_and_reported,
    revoked_devices_and_deleted_accounts_leave_the_group_on_the_facilitators_next_sync,
    a_laptop_linked_while_the_phone_is_live_is_brought_in_at_once,
    a_wake_after_a_removal_from_one_circle_still_catches_up_the_others,
    a_phone_upgraded_from_an_sdk_that_kept_mls_state_apart_reads_on,
);

async fn a_facilitator_invites_sam_who_joins_and_they_talk(app: TestApp) -> Result<()> {
    let dirs = data_dirs(2)?;
    let facilitator = client(&app, &dirs[0]).await?;
    let sam = client(&app, &dirs[1]).await?;
    facilitator.register(None).await?;
    sam.register(None).await?;

    let circle = facilitator.create_circle().await?;
    let link = facilitator.create_invite(&circle).await?;
    assert!(link.starts_with("hearth:invite/hit_") && link.contains('#'));
    let request = sam
        .redeem_invite(&link, "Sam, referred by Dr. Okafor")
        .await?;

    // The facilitator reads the note the server could not.
    let requests = facilitator.join_requests(&circle).await?;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].note.as_deref(),
        Some("Sam, referred by Dr. Okafor")
    );
    assert_eq!(
        requests[0].device_ids,
        vec![sam.device_id().await?.expect("registered")]
    );
    facilitator.approve(&circle, request).await?;
    assert_eq!(sam.accept_welcomes().await?, vec![circle.clone()]);

    facilitator.send_text(&circle, "Welcome, Sam.").await?;
    let received = sam.sync(&circle).await?;
    assert_eq!(texts(&received), ["Welcome, Sam."]);
    sam.send_text(&circle, "Glad to be here.").await?;
    assert_eq!(
        texts(&facilitator.sync(&circle).await?),
        ["Glad to be here."]
    );
    assert_eq!(
        texts(&facilitator.history(&circle).await?),
        ["Welcome, Sam.", "Glad to be here."]
    );
    assert_eq!(
        facilitator.epoch_authenticator(&circle).await?,
        sam.epoch_authenticator(&circle).await?
    );
    Ok(())
}

async fn a_client_restarted_from_its_data_directory_continues(app: TestApp) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    clients[0].send_text(&circle, "before the restart").await?;
    clients[1].sync(&circle).await?;
    let sam_device = clients[1].device_id().await?;
    let mut clients = clients.into_iter();
    let facilitator = clients.next().expect("facilitator");
    drop(clients);

    // Sam's phone restarts: keys, login, group state and history are on disk.
    let sam = client(&app, &dirs[1]).await?;
    assert_eq!(sam.device_id().await?, sam_device);
    assert_eq!(texts(&sam.history(&circle).await?), ["before the restart"]);
    facilitator.send_text(&circle, "after the restart").await?;
    assert_eq!(texts(&sam.sync(&circle).await?), ["after the restart"]);
    sam.send_text(&circle, "still me").await?;
    assert_eq!(texts(&facilitator.sync(&circle).await?), ["still me"]);
    Ok(())
}

async fn two_members_updating_at_once_both_land_and_agree(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let before = clients[0].epoch(&circle).await?;
    let (a, b) = tokio::join!(clients[1].update(&circle), clients[2].update(&circle));
    a?;
    b?;
    for c in &clients {
        c.sync(&circle).await?;
    }
    assert_eq!(
        clients[0].epoch(&circle).await?,
        before + 2,
        "both commits applied"
    );
    let mut authenticators = HashSet::new();
    for c in &clients {
        authenticators.insert(c.epoch_authenticator(&circle).await?);
    }
    assert_eq!(authenticators.len(), 1, "everyone agrees");
    Ok(())
}

async fn sams_laptop_joins_his_circles_and_reads_along(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let (facilitator, phone) = (&clients[0], &clients[1]);

    // Sam links a laptop to his account with a token from his phone.
    let laptop = client(&app, &dirs[2]).await?;
    let link = phone.link_token().await?;
    laptop.register(Some(&link)).await?;
    assert_eq!(laptop.account_id().await?, phone.account_id().await?);

    // The phone brings the laptop into Sam's circles by itself, on its next
    // sync, and says so.
    phone.sync(&circle).await?;
    let laptop_id = laptop.device_id().await?.expect("registered");
    assert_eq!(
        phone.take_notices(),
        [hearth_client::Event::DevicesAdded {
            circle_id: circle.clone(),
            devices: vec![laptop_id],
        }]
    );
    assert_eq!(laptop.accept_welcomes().await?, vec![circle.clone()]);
    assert!(phone.add_my_other_devices().await?.is_empty(), "once");
    facilitator
        .send_text(&circle, "hello, both of Sam's screens")
        .await?;
    assert_eq!(
        texts(&laptop.sync(&circle).await?),
        ["hello, both of Sam's screens"]
    );
    assert_eq!(
        texts(&phone.sync(&circle).await?),
        ["hello, both of Sam's screens"]
    );
    laptop.send_text(&circle, "typing on the laptop").await?;
    assert_eq!(
        texts(&facilitator.sync(&circle).await?),
        ["typing on the laptop"]
    );

    // Adding someone else's device is the facilitator's call, after that
    // person asked: Sam's phone cannot even claim a stranger's KeyPackages.
    let stranger_dir = tempfile::tempdir()?;
    let stranger = client(&app, &stranger_dir).await?;
    let stranger_device = stranger.register(None).await?;
    let refused = phone.add_devices(&circle, &[stranger_device], None).await;
    assert_eq!(
        refused.err().and_then(|e| e.code()),
        Some(hearth_protocol::ErrorCode::ClaimNotAllowed)
    );
    Ok(())
}

fn numbered(rows: &[hearth_client::Message]) -> Vec<(u64, String)> {
    rows.iter()
        .filter_map(|r| match &r.envelope.content {
            Content::Text { body, .. } => Some((r.seq, body.clone())),
            _ => None,
        })
        .collect()
}

async fn a_full_circle_of_twelve_sees_one_conversation_in_one_order(app: TestApp) -> Result<()> {
    let dirs = data_dirs(12)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    // Four people speak, twice each, interleaved.
    for round in 0..2 {
        for speaker in [0, 3, 7, 11] {
            clients[speaker]
                .send_text(&circle, &format!("{speaker} says {round}"))
                .await?;
        }
    }
    let mut conversations = Vec::new();
    for c in &clients {
        c.sync(&circle).await?;
        conversations.push(numbered(&c.history(&circle).await?));
    }
    assert_eq!(conversations[0].len(), 8);
    assert!(
        conversations.windows(2).all(|w| w[0] == w[1]),
        "one order for all twelve"
    );
    let mut authenticators = HashSet::new();
    for c in &clients {
        authenticators.insert(c.epoch_authenticator(&circle).await?);
    }
    assert_eq!(authenticators.len(), 1);
    Ok(())
}

async fn a_removed_member_reads_nothing_new_and_the_rest_carry_on(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    // Alex is in a second circle too, which has nothing to do with this.
    let other = clients[1].create_circle().await?;
    let link = clients[1].create_invite(&other).await?;
    let request = clients[2].redeem_invite(&link, "").await?;
    clients[1].approve(&other, request).await?;
    clients[2].accept_welcomes().await?;
    clients[0].send_text(&circle, "before the removal").await?;
    clients[2].sync(&circle).await?;

    let removed = clients[2].device_id().await?.expect("registered");
    clients[0].remove_devices(&circle, &[removed]).await?;
    clients[0].send_text(&circle, "after the removal").await?;

    // The removed device is told so, reads nothing new, and keeps what it
    // had read.
    let refused = clients[2].sync(&circle).await;
    assert!(
        matches!(refused, Err(hearth_client::ClientError::RemovedFromCircle)),
        "{refused:?}"
    );
    assert_eq!(
        clients[2].take_notices(),
        [hearth_client::Event::Removed {
            circle_id: circle.clone()
        }]
    );
    assert_eq!(
        texts(&clients[2].history(&circle).await?),
        ["before the removal"]
    );
    assert_eq!(clients[2].circles().await?, std::slice::from_ref(&other));
    assert_eq!(clients[2].past_circles().await?, [(circle.clone(), true)]);
    let refused = clients[2].send_text(&circle, "let me back in").await;
    assert!(matches!(
        refused,
        Err(hearth_client::ClientError::RemovedFromCircle)
    ));
    // Her other circle works as before.
    clients[2].send_text(&other, "still with you").await?;
    assert_eq!(texts(&clients[1].sync(&other).await?), ["still with you"]);
    // Removed from the other circle too, Alex learns it when she next
    // writes there.
    let alex = clients[2].device_id().await?.expect("registered");
    clients[1].remove_devices(&other, &[alex]).await?;
    let refused = clients[2].send_text(&other, "anyone?").await;
    assert!(
        matches!(refused, Err(hearth_client::ClientError::RemovedFromCircle)),
        "{refused:?}"
    );
    assert_eq!(clients[2].past_circles().await?.len(), 2);
    clients[2].take_notices();

    // The others carry on.
    assert_eq!(
        texts(&clients[1].sync(&circle).await?),
        ["before the removal", "after the removal"]
    );
    clients[1].send_text(&circle, "still here").await?;
    assert_eq!(texts(&clients[0].sync(&circle).await?), ["still here"]);
    Ok(())
}

async fn a_member_offline_for_two_hundred_messages_catches_up_in_order(app: TestApp) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let (facilitator, sam) = (&clients[0], &clients[1]);
    let sent: Vec<String> = (0..200).map(|n| format!("message {n:03}")).collect();
    for text in &sent {
        facilitator.send_text(&circle, text).await?;
    }
    // Sam comes back online: two pages and more, in order, once.
    let caught_up = sam.sync(&circle).await?;
    assert_eq!(texts(&caught_up), sent);
    assert!(sam.sync(&circle).await?.is_empty(), "nothing twice");
    Ok(())
}

async fn next_event(
    events: &mut tokio::sync::mpsc::Receiver<hearth_client::Event>,
) -> Result<hearth_client::Event> {
    tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the live stream ended"))
}

async fn the_live_stream_decodes_messages_and_resumes_after_the_server_restarts(
    db: Db,
) -> Result<()> {
    use hearth_client::Event;
    let app = TestApp::spawn(db).await?;
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let mut clients = clients.into_iter();
    let facilitator = clients.next().expect("facilitator");
    let sam = std::sync::Arc::new(clients.next().expect("sam"));

    let mut events = sam.live();
    assert_eq!(next_event(&mut events).await?, Event::Connected);
    facilitator.send_text(&circle, "live, first").await?;
    match next_event(&mut events).await? {
        Event::Message { circle_id, message } => {
            assert_eq!(circle_id, circle);
            assert_eq!(texts(&[message]), ["live, first"]);
        }
        other => anyhow::bail!("expected a message, got {other:?}"),
    }

    // The server restarts on the same port; Sam's stream notices, comes back,
    // and picks up what was sent meanwhile.
    let listen = app.address.trim_start_matches("http://").to_owned();
    let db = app.stop().await?;
    assert_eq!(next_event(&mut events).await?, Event::Disconnected);
    let app = TestApp::start(db, |c| c.listen = listen).await?;
    facilitator
        .send_text(&circle, "while you were away")
        .await?;
    let mut received = Vec::new();
    while received.is_empty() {
        match next_event(&mut events).await? {
            Event::Message { message, .. } => received.push(message),
            Event::Connected | Event::Disconnected => {}
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!(texts(&received), ["while you were away"]);
    assert_eq!(
        texts(&sam.history(&circle).await?),
        ["live, first", "while you were away"]
    );
    assert!(
        sam.sync(&circle).await?.is_empty(),
        "the stream left nothing for sync to repeat"
    );
    drop(app);
    Ok(())
}

async fn a_client_that_lost_its_mls_state_rejoins_by_itself(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let mut clients = clients.into_iter();
    let (facilitator, sam, alex) = (
        clients.next().expect("facilitator"),
        clients.next().expect("sam"),
        clients.next().expect("alex"),
    );

    // Sam's phone loses its MLS state (keys and login survive).
    drop(sam);
    lose_mls_state(dirs[1].path())?;
    let sam = client(&app, &dirs[1]).await?;
    // Its next sync notices and rejoins by external commit, and says that
    // what was sent meanwhile cannot be read here.
    sam.sync(&circle).await?;
    assert_eq!(
        sam.take_notices(),
        [hearth_client::Event::Rejoined {
            circle_id: circle.clone()
        }]
    );
    facilitator.send_text(&circle, "welcome back").await?;
    assert_eq!(texts(&sam.sync(&circle).await?), ["welcome back"]);
    assert_eq!(texts(&alex.sync(&circle).await?), ["welcome back"]);
    sam.send_text(&circle, "thanks").await?;
    assert_eq!(texts(&facilitator.sync(&circle).await?), ["thanks"]);
    let mut authenticators = HashSet::new();
    for c in [&facilitator, &sam, &alex] {
        authenticators.insert(c.epoch_authenticator(&circle).await?);
    }
    assert_eq!(authenticators.len(), 1, "one view after the rejoin");
    Ok(())
}

async fn names_and_titles_travel_encrypted_and_reach_later_joiners(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let alice = client(&app, &dirs[0]).await?;
    alice.register(None).await?;
    alice.set_display_name("Alice").await?;
    let circle = alice.create_circle().await?;
    alice.set_title(&circle, "Thursday peer support").await?;

    let mut members = Vec::new();
    for (dir, name) in dirs[1..].iter().zip(["Sam", "Priya"]) {
        let member = client(&app, dir).await?;
        let device = member.register(None).await?;
        member.set_display_name(name).await?;
        let link = alice.create_invite(&circle).await?;
        let request = member.redeem_invite(&link, "hello").await?;
        alice.approve(&circle, request).await?;
        member.accept_welcomes().await?;
        members.push((member, device, name));
    }
    // Everyone syncs; the existing members re-introduce themselves to Priya.
    for _ in 0..2 {
        alice.sync(&circle).await?;
        for (member, _, _) in &members {
            member.sync(&circle).await?;
        }
    }
    let alice_device = alice.device_id().await?.expect("registered");
    let (priya, _, _) = &members[1];
    assert_eq!(
        priya.title(&circle).await?.as_deref(),
        Some("Thursday peer support")
    );
    let names = priya.names(&circle).await?;
    assert_eq!(names.get(&alice_device).map(String::as_str), Some("Alice"));
    assert_eq!(names.get(&members[0].1).map(String::as_str), Some("Sam"));
    assert_eq!(names.get(&members[1].1).map(String::as_str), Some("Priya"));
    // Profiles are not chat: history holds only what people said.
    assert!(priya.history(&circle).await?.is_empty());
    Ok(())
}

async fn a_revoked_invite_stops_working_and_a_member_who_leaves_hears_nothing_more(
    db: Db,
) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let (facilitator, sam) = (&clients[0], &clients[1]);

    let invite = facilitator
        .create_invite_with(
            &circle,
            hearth_protocol::circles::CreateInvite {
                max_uses: Some(3),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        facilitator
            .invites(&circle)
            .await?
            .iter()
            .filter(|i| i.invite_id == invite.id)
            .count(),
        1
    );
    facilitator.revoke_invite(&circle, invite.id).await?;
    let late = client(&app, &dirs[2]).await?;
    late.register(None).await?;
    let refused = late.redeem_invite(&invite.link, "too late?").await;
    assert_eq!(
        refused.err().and_then(|e| e.code()),
        Some(hearth_protocol::ErrorCode::InviteInvalid)
    );

    // Sam leaves; what follows never reaches him.
    let sam_device = sam.device_id().await?.expect("registered");
    assert!(facilitator.members(&circle).await?.contains(&sam_device));
    sam.leave(&circle).await?;
    assert!(sam.circles().await?.is_empty());
    facilitator.send_text(&circle, "after Sam left").await?;
    // The facilitator's client took Sam's leaf out of the MLS group too.
    assert!(!facilitator.members(&circle).await?.contains(&sam_device));
    let refused = sam.sync(&circle).await;
    assert!(
        matches!(refused, Err(hearth_client::ClientError::LeftCircle)),
        "{refused:?}"
    );
    assert!(texts(&sam.history(&circle).await?).is_empty());
    assert_eq!(sam.devices().await?.devices.len(), 1);

    // Sam thinks better of it: he is invited and approved again, and his
    // device (which still holds what it knew of the circle) simply joins.
    let again = facilitator.create_invite(&circle).await?;
    let request = sam.redeem_invite(&again, "may I come back?").await?;
    facilitator.approve(&circle, request).await?;
    assert_eq!(sam.accept_welcomes().await?, std::slice::from_ref(&circle));
    assert_eq!(sam.circles().await?, std::slice::from_ref(&circle));
    facilitator.send_text(&circle, "welcome back, Sam").await?;
    assert_eq!(texts(&sam.sync(&circle).await?), ["welcome back, Sam"]);
    sam.send_text(&circle, "glad to be back").await?;
    assert_eq!(
        texts(&facilitator.sync(&circle).await?),
        ["glad to be back"]
    );
    Ok(())
}

async fn sams_new_laptop_asking_by_invite_joins_without_its_twin(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let (facilitator, phone) = (&clients[0], &clients[1]);
    let laptop = client(&app, &dirs[2]).await?;
    laptop.register(Some(&phone.link_token().await?)).await?;

    // Before the phone syncs, Sam asks from the laptop with a new invite: the
    // request names both his devices, the phone already in the circle.
    let link = facilitator.create_invite(&circle).await?;
    let request = laptop.redeem_invite(&link, "my laptop").await?;
    let asked = facilitator.join_requests(&circle).await?;
    assert_eq!(asked[0].device_ids.len(), 2);
    let laptop_id = laptop.device_id().await?.expect("registered");
    assert_eq!(
        facilitator.approve(&circle, request).await?,
        [laptop_id],
        "the phone is left out"
    );
    assert_eq!(
        laptop.accept_welcomes().await?,
        std::slice::from_ref(&circle)
    );
    facilitator.send_text(&circle, "both of you").await?;
    assert_eq!(texts(&laptop.sync(&circle).await?), ["both of you"]);
    assert_eq!(texts(&phone.sync(&circle).await?), ["both of you"]);
    assert!(
        phone.take_notices().is_empty(),
        "the phone had nothing left to add"
    );
    assert!(facilitator.join_requests(&circle).await?.is_empty());

    // A tablet asks too, but the phone brings it in first: approving then
    // adds nobody and closes the request.
    let tablet_dir = tempfile::tempdir()?;
    let tablet = client(&app, &tablet_dir).await?;
    tablet.register(Some(&phone.link_token().await?)).await?;
    let link = facilitator.create_invite(&circle).await?;
    let request = tablet.redeem_invite(&link, "my tablet").await?;
    phone.sync(&circle).await?;
    assert!(facilitator.approve(&circle, request).await?.is_empty());
    assert!(facilitator.join_requests(&circle).await?.is_empty());
    assert_eq!(
        tablet.accept_welcomes().await?,
        std::slice::from_ref(&circle)
    );
    Ok(())
}

async fn a_welcome_the_device_cannot_use_is_repaired_and_reported(app: TestApp) -> Result<()> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let facilitator = &clients[0];
    let sam = client(&app, &dirs[2]).await?;
    sam.register(None).await?;
    let link = facilitator.create_invite(&circle).await?;
    let request = sam.redeem_invite(&link, "hi").await?;
    // Sam's phone loses the keys of the KeyPackages it published before the
    // facilitator approves: the Welcome will be for a KeyPackage it no
    // longer holds.
    drop(sam);
    lose_mls_state(dirs[2].path())?;
    let sam = client(&app, &dirs[2]).await?;
    facilitator.approve(&circle, request).await?;
    facilitator.send_text(&circle, "welcome, Sam").await?;

    // The Welcome does not stop Sam: he joins from the GroupInfo instead and
    // hears that the Welcome was unusable.
    assert_eq!(sam.accept_welcomes().await?, std::slice::from_ref(&circle));
    assert_eq!(
        sam.take_notices(),
        [hearth_client::Event::WelcomeUnusable {
            circle_id: circle.clone(),
            repaired: true
        }]
    );
    assert!(
        sam.accept_welcomes().await?.is_empty(),
        "the Welcome was acknowledged, not left to block the next ones"
    );
    facilitator.send_text(&circle, "can you read this?").await?;
    assert_eq!(texts(&sam.sync(&circle).await?), ["can you read this?"]);
    sam.send_text(&circle, "yes").await?;
    assert_eq!(texts(&facilitator.sync(&circle).await?), ["yes"]);
    assert_eq!(
        texts(&clients[1].sync(&circle).await?),
        ["welcome, Sam", "can you read this?", "yes"]
    );
    Ok(())
}

async fn revoked_devices_and_deleted_accounts_leave_the_group_on_the_facilitators_next_sync(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(4)?;
    let (clients, circle) = enrolled(&app, &dirs[..3]).await?;
    let (facilitator, phone, alex) = (&clients[0], &clients[1], &clients[2]);
    let laptop = client(&app, &dirs[3]).await?;
    let laptop_id = laptop.register(Some(&phone.link_token().await?)).await?;
    phone.sync(&circle).await?;
    laptop.accept_welcomes().await?;
    facilitator.sync(&circle).await?;
    assert!(facilitator.members(&circle).await?.contains(&laptop_id));

    // Sam loses his laptop and revokes it from his phone; Alex deletes her
    // account.
    phone.revoke_device(laptop_id).await?;
    let alex_id = alex.device_id().await?.expect("registered");
    alex.delete_account().await?;

    // The facilitator's next sync takes both out of the MLS group.
    facilitator.sync(&circle).await?;
    let members = facilitator.members(&circle).await?;
    assert!(!members.contains(&laptop_id), "the revoked laptop is out");
    assert!(!members.contains(&alex_id), "Alex's device is out");
    assert_eq!(members.len(), 2);
    facilitator.send_text(&circle, "just us two").await?;
    assert_eq!(texts(&phone.sync(&circle).await?), ["just us two"]);
    assert_eq!(phone.members(&circle).await?, members);
    Ok(())
}

async fn a_laptop_linked_while_the_phone_is_live_is_brought_in_at_once(app: TestApp) -> Result<()> {
    use hearth_client::Event;
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let mut clients = clients.into_iter();
    let facilitator = clients.next().expect("facilitator");
    let phone = std::sync::Arc::new(clients.next().expect("phone"));
    let mut events = phone.live();
    assert_eq!(next_event(&mut events).await?, Event::Connected);

    // Sam links his laptop; the phone, live, adds it without being asked.
    let laptop = client(&app, &dirs[2]).await?;
    let laptop_id = laptop.register(Some(&phone.link_token().await?)).await?;
    loop {
        match next_event(&mut events).await? {
            Event::DevicesAdded { circle_id, devices } => {
                assert_eq!((circle_id, devices), (circle.clone(), vec![laptop_id]));
                break;
            }
            Event::Message { .. } => {}
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        laptop.accept_welcomes().await?,
        std::slice::from_ref(&circle)
    );
    facilitator.send_text(&circle, "hello, laptop").await?;
    assert_eq!(texts(&laptop.sync(&circle).await?), ["hello, laptop"]);
    Ok(())
}

async fn a_wake_after_a_removal_from_one_circle_still_catches_up_the_others(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, first) = enrolled(&app, &dirs).await?;
    let (alice, sam) = (&clients[0], &clients[1]);
    // A second circle with both of them, which meets tomorrow.
    let second = alice.create_circle().await?;
    hearth_tests::clients::join(alice, sam, &second).await?;
    let tomorrow = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(30))?
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin")?);
    let series = hearth_protocol::schedule::Series {
        first_date: tomorrow.date(),
        start_time: tomorrow.time(),
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 60,
        every_weeks: 1,
        count: Some(2),
        until: None,
        title: None,
        agenda: None,
        video_room: false,
    };
    alice.schedule_series(&second, series).await?;

    // While Sam's phone sleeps, Alice removes him from the first circle and
    // writes in the second. The wake catches up the second regardless.
    let sam_id = sam.device_id().await?.expect("registered");
    alice.remove_devices(&first, &[sam_id]).await?;
    alice.send_text(&second, "see you tomorrow").await?;
    let woken = sam.on_wake().await?;
    assert!(
        woken
            .new_messages
            .iter()
            .any(|(c, n)| *c == second && *n >= 1),
        "{:?}",
        woken.new_messages
    );
    assert!(
        sam.take_notices().iter().any(
            |e| matches!(e, hearth_client::Event::Removed { circle_id } if *circle_id == first)
        ),
        "the removal is told"
    );
    // Reminders, too, come from the circles he is still in.
    let reminders = sam
        .upcoming_reminders(jiff::SignedDuration::from_hours(72))
        .await?;
    assert!(!reminders.is_empty() && reminders.iter().all(|r| r.circle_id == second));
    Ok(())
}

/// SDKs before this one kept openmls's tables in a file of their own,
/// `mls.db`. Sam's phone is such a directory (made here by moving the tables
/// out, as that SDK left them); the new SDK takes them in on open, and Sam
/// reads on and writes in the same group.
async fn a_phone_upgraded_from_an_sdk_that_kept_mls_state_apart_reads_on(
    app: TestApp,
) -> Result<()> {
    let dirs = data_dirs(2)?;
    let (clients, circle) = enrolled(&app, &dirs).await?;
    let mut clients = clients.into_iter();
    let (Some(alice), Some(sam)) = (clients.next(), clients.next()) else {
        anyhow::bail!("two clients")
    };
    alice.send_text(&circle, "before the upgrade").await?;
    sam.sync(&circle).await?;
    drop(sam);

    // The old layout: openmls's tables in mls.db, none in client.db.
    let dir = dirs[1].path();
    {
        let db = rusqlite::Connection::open(dir.join("client.db"))?;
        db.execute(
            "ATTACH DATABASE ?1 AS legacy",
            [dir.join("mls.db").to_string_lossy()],
        )?;
        let tables: Vec<String> = {
            let mut statement = db.prepare(
                "SELECT name FROM main.sqlite_master WHERE type = 'table' \
                 AND (name LIKE 'openmls_%' OR name LIKE 'vc_%' OR name LIKE 'registered_vc_%')",
            )?;
            let names = statement.query_map((), |r| r.get::<_, String>(0))?;
            names.collect::<Result<_, _>>()?
        };
        anyhow::ensure!(tables.len() > 5, "openmls's tables: {tables:?}");
        for table in tables {
            db.execute_batch(&format!(
                "CREATE TABLE legacy.\"{table}\" AS SELECT * FROM main.\"{table}\";
                 DROP TABLE main.\"{table}\";"
            ))?;
        }
    }

    alice.send_text(&circle, "after the upgrade").await?;
    let sam = client(&app, &dirs[1]).await?;
    assert!(!dir.join("mls.db").exists(), "taken in, the old file goes");
    assert_eq!(texts(&sam.sync(&circle).await?), ["after the upgrade"]);
    assert!(sam.take_notices().is_empty(), "no rejoin: the same group");
    sam.send_text(&circle, "still here").await?;
    assert_eq!(texts(&alice.sync(&circle).await?), ["still here"]);
    Ok(())
}
