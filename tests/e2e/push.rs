//! Push: phones asleep are woken through Web Push, APNs and FCM stand-ins
//! that speak each protocol and check what they receive; a phone with a
//! live socket is not; bursts coalesce; gone targets die and their devices
//! see it; queued wakes survive a restart; with two nodes each wake goes
//! once; and nothing a push service sees says who, which circle, or what.

use anyhow::{Result, bail};
use hearth_protocol::circles::SendMessage;
use hearth_protocol::content::Content;
use hearth_protocol::push::{PushDeadReason, PushServices, PushStatus, PushTarget, WAKE_PAYLOAD};
use hearth_protocol::{Base64Bytes, CircleId, ErrorCode};
use hearth_tests::clients::{client, data_dirs, enrolled};
use hearth_tests::process::ServerProcess;
use hearth_tests::push::{PushKeys, PushReceiver, Service, Subscriber, apns_token, fcm_token};
use hearth_tests::{
    Db, Stream, TestApp, TestDb, b64, expect_error, on_both_databases, on_postgres, rand_bytes,
};
use std::collections::HashSet;
use std::time::Duration;

on_both_databases!(
    a_sleeping_phone_is_woken_once_per_burst_and_a_live_one_not_at_all,
    gone_targets_die_and_their_devices_can_tell,
    wakes_queued_before_a_restart_go_out_after_it,
    a_node_killed_under_a_live_socket_does_not_swallow_its_wakes,
    two_hundred_sockets_opening_at_once_are_recorded_in_a_few_writes,
    registration_refuses_what_the_server_will_not_call,
    through_the_sdk_a_woken_phone_finds_what_waits,
    the_push_services_see_traffic_not_circles,
    an_operator_chooses_the_iphone_wake_a_localised_alert_or_a_background_push,
    an_operator_sees_the_push_queue_and_why_wakes_failed,
);
on_postgres!(two_nodes_send_each_wake_once);

/// FCM's answer for a token whose app was uninstalled.
const FCM_UNREGISTERED: &str = r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",
    "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;

/// How long a wake may take to arrive.
const ARRIVES: Duration = Duration::from_secs(10);

async fn with_push(db: Db, interval: u64) -> Result<(TestApp, PushKeys, PushReceiver)> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    let app = TestApp::spawn_with(db, |c| keys.configure(c, &receiver, interval)).await?;
    Ok((app, keys, receiver))
}

async fn register(app: &TestApp, token: &str, target: &PushTarget) -> Result<PushStatus> {
    let answer = app
        .put_json("/v1/devices/current/push", token, target)
        .await?;
    if answer.status() != 200 {
        bail!(
            "registering a push target: {} {}",
            answer.status(),
            answer.text().await?
        );
    }
    Ok(answer.json().await?)
}

async fn status(app: &TestApp, token: &str) -> Result<PushStatus> {
    let answer = app.get("/v1/devices/current/push", token).await?;
    if answer.status() != 200 {
        bail!("reading push status: {}", answer.status());
    }
    Ok(answer.json().await?)
}

/// The device's push status once the server has marked its target dead, or
/// an error if that does not happen while a wake would arrive.
async fn dead_status(app: &TestApp, token: &str) -> Result<PushStatus> {
    let deadline = tokio::time::Instant::now() + ARRIVES;
    loop {
        let health = status(app, token).await?;
        if health.dead_since.is_some() || tokio::time::Instant::now() > deadline {
            return Ok(health);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(app: &TestApp, circle: &CircleId, token: &str, text: &[u8]) -> Result<()> {
    send_at(&app.address, circle, token, text).await
}

/// [`send`] to the server at `address` (a server process).
async fn send_at(address: &str, circle: &CircleId, token: &str, text: &[u8]) -> Result<()> {
    let body = SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch: 1,
        ciphertext: Base64Bytes::from(hearth_tests::opaque_message(circle, 1, text)),
    };
    let answer = reqwest::Client::new()
        .post(format!("{address}/v1/circles/{circle}/messages"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("sending: {}", answer.status());
    }
    Ok(())
}

/// Lets the queue and the sender run, so that a wake that should not come
/// has had its chance.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

async fn a_sleeping_phone_is_woken_once_per_burst_and_a_live_one_not_at_all(db: Db) -> Result<()> {
    let captured = hearth_tests::captured_logs();
    let (app, keys, receiver) = with_push(db, 30).await?;
    // The facilitator writes; Ada's browser (Web Push) and Ben's Android
    // phone (FCM) sleep; Cleo's iPhone (APNs) has the app open.
    let (circle, tokens) = app.opaque_circle(3).await?;
    let (facilitator, ada, ben, cleo) = (&tokens[0], &tokens[1], &tokens[2], &tokens[3]);
    let services: PushServices = app.get("/v1/push/services", ada).await?.json().await?;
    assert_eq!(
        services.web_push_vapid_key.as_deref(),
        Some(keys.vapid_public.as_str())
    );
    assert!(services.apns && services.fcm);

    let browser = Subscriber::new()?;
    let ben_token = fcm_token();
    let cleo_token = apns_token();
    // Cleo's app is open before she registers: the wakes for how the circle
    // was set up may still be on their way, and none may reach her.
    let mut cleo_socket = app.stream(cleo).await?;
    cleo_socket.resume(&[(&circle, 0)]).await?;
    let registered = register(&app, ada, &browser.target(&receiver)).await?;
    assert!(registered.working && registered.last_wake_at.is_none());
    register(
        &app,
        ben,
        &PushTarget::Fcm {
            token: ben_token.clone(),
        },
    )
    .await?;
    register(
        &app,
        cleo,
        &PushTarget::Apns {
            token: cleo_token.clone(),
            topic: None,
            environment: None,
        },
    )
    .await?;

    // Ten messages in a burst: Ada and Ben are each woken once; Cleo, live,
    // not at all; the facilitator has no target.
    let canary = b"push-canary-7f3e";
    for i in 0..10u8 {
        send(
            &app,
            &circle,
            facilitator,
            &[canary.as_slice(), &[i]].concat(),
        )
        .await?;
    }
    let web = receiver
        .wait_for(&Service::WebPush(browser.id.clone()), 1, ARRIVES)
        .await?;
    let fcm = receiver
        .wait_for(&Service::Fcm(ben_token.clone()), 1, ARRIVES)
        .await?;
    settle().await;
    assert_eq!(
        receiver
            .received_by(&Service::WebPush(browser.id.clone()))
            .len(),
        1
    );
    assert_eq!(
        receiver.received_by(&Service::Fcm(ben_token.clone())).len(),
        1
    );
    assert!(
        receiver
            .received_by(&Service::Apns(cleo_token.clone()))
            .is_empty(),
        "a device with a live socket is not woken"
    );
    if let Some(plain) = browser.decrypt(&web[0].body).await? {
        assert_eq!(plain, WAKE_PAYLOAD, "the wake says nothing but 'wake'");
    }
    assert_eq!(fcm[0].version, "HTTP/1.1");
    assert!(status(&app, ada).await?.last_wake_at.is_some());

    // Cleo closes the app; the next message wakes her iPhone, over HTTP/2.
    cleo_socket.close().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&app, &circle, ben, b"are we still on for thursday").await?;
    let apns = receiver
        .wait_for(&Service::Apns(cleo_token.clone()), 1, ARRIVES)
        .await?;
    assert_eq!(apns[0].version, "HTTP/2.0");
    // An alert her Notification Service Extension replaces once it has
    // decrypted; if it cannot, she still sees that something happened.
    assert_eq!(
        String::from_utf8_lossy(&apns[0].body),
        r#"{"aps":{"alert":{"body":"New activity in your circle"},"mutable-content":1}}"#
    );
    assert_eq!(apns[0].header("apns-push-type"), Some("alert"));
    assert_eq!(apns[0].header("apns-priority"), Some("10"));
    assert_eq!(apns[0].header("apns-collapse-id"), Some("hearth"));
    // Ada was woken less than an interval ago: no second wake yet.
    settle().await;
    assert_eq!(
        receiver
            .received_by(&Service::WebPush(browser.id.clone()))
            .len(),
        1
    );
    assert!(
        receiver.violations().is_empty(),
        "{:?}",
        receiver.violations()
    );

    // What the push services saw: no circle, no device, no account, no
    // content, no count; every wake of a kind the same size.
    let devices: serde_json::Value = app.get("/v1/devices", ada).await?.json().await?;
    let mut secrets = vec![
        circle.to_string(),
        hearth_tests::hex(circle.as_bytes()),
        devices["account_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        String::from_utf8_lossy(canary).into_owned(),
        b64(canary),
    ];
    for device in devices["devices"].as_array().into_iter().flatten() {
        secrets.push(device["device_id"].as_str().unwrap_or_default().to_owned());
    }
    let received = receiver.received();
    for request in &received {
        let mut seen = String::from_utf8_lossy(&request.body).into_owned();
        for (name, value) in &request.headers {
            seen.push_str(&format!("\n{name}: {value}"));
        }
        seen.push_str(&request.path);
        for secret in &secrets {
            assert!(
                !seen.contains(secret.as_str()),
                "a push service saw {secret}"
            );
        }
        for count in ["\"10\"", ":10", "\"count\"", "badge"] {
            assert!(!seen.contains(count), "a push service saw a count: {seen}");
        }
    }
    let web_sizes: Vec<usize> = received
        .iter()
        .filter(|r| matches!(r.service, Service::WebPush(_)))
        .map(|r| r.body.len())
        .collect();
    assert!(web_sizes.windows(2).all(|w| w[0] == w[1]));

    // The database holds no endpoint and no token; nor do the logs.
    let dump = app.db.dump().await?.join("\n");
    let logs = String::from_utf8_lossy(&captured.bytes()).into_owned();
    for secret in [&browser.id, &ben_token, &cleo_token] {
        assert!(
            !dump.contains(secret.as_str()),
            "the database shows a push target"
        );
        assert!(
            !logs.contains(secret.as_str()),
            "the logs show a push target"
        );
    }
    Ok(())
}

async fn gone_targets_die_and_their_devices_can_tell(db: Db) -> Result<()> {
    let (app, _keys, receiver) = with_push(db, 30).await?;
    let (circle, tokens) = app.opaque_circle(3).await?;
    let (facilitator, ada, ben, cleo) = (&tokens[0], &tokens[1], &tokens[2], &tokens[3]);
    let browser = Subscriber::new()?;
    let ben_token = fcm_token();
    let cleo_token = apns_token();
    // Ada unsubscribed in her browser; Ben uninstalled the app; Cleo's
    // token was never valid. (The services answer so from the start: a wake
    // for something from before the registration may come first.)
    receiver.answer(&browser.id, 410, &[], "");
    receiver.answer(
        &ben_token,
        404,
        &[("content-type", "application/json")],
        FCM_UNREGISTERED,
    );
    receiver.answer(
        &cleo_token,
        400,
        &[("content-type", "application/json")],
        r#"{"reason":"BadDeviceToken"}"#,
    );
    register(&app, ada, &browser.target(&receiver)).await?;
    register(
        &app,
        ben,
        &PushTarget::Fcm {
            token: ben_token.clone(),
        },
    )
    .await?;
    register(
        &app,
        cleo,
        &PushTarget::Apns {
            token: cleo_token.clone(),
            topic: Some(hearth_tests::push::TOPIC.into()),
            environment: Some(hearth_protocol::push::ApnsEnvironment::Sandbox),
        },
    )
    .await?;
    send(&app, &circle, facilitator, b"first").await?;
    receiver
        .wait_for(&Service::WebPush(browser.id.clone()), 1, ARRIVES)
        .await?;
    receiver
        .wait_for(&Service::Fcm(ben_token.clone()), 1, ARRIVES)
        .await?;
    let apns = receiver
        .wait_for(&Service::Apns(cleo_token.clone()), 1, ARRIVES)
        .await?;
    assert!(
        apns[0].path.starts_with("/sandbox/"),
        "a sandbox token goes to the sandbox"
    );
    // The answers are recorded after the wakes went out: wait for that, not
    // for a fixed time (a loaded machine takes longer).
    for (token, reason) in [
        (ada, PushDeadReason::Unregistered),
        (ben, PushDeadReason::Unregistered),
        (cleo, PushDeadReason::BadToken),
    ] {
        let health = dead_status(&app, token).await?;
        assert!(!health.working, "{reason:?}: {health:?}");
        assert!(health.dead_since.is_some());
        assert_eq!(health.dead_reason, Some(reason));
    }
    // Dead targets are not tried again.
    send(&app, &circle, facilitator, b"second").await?;
    settle().await;
    assert_eq!(receiver.received().len(), 3);

    // Ada subscribes again: she is woken again.
    let renewed = Subscriber::new()?;
    let health = register(&app, ada, &renewed.target(&receiver)).await?;
    assert!(health.working);
    send(&app, &circle, facilitator, b"third").await?;
    receiver
        .wait_for(&Service::WebPush(renewed.id.clone()), 1, ARRIVES)
        .await?;

    // A service that is busy says when to come back; the wake comes then.
    let busy = fcm_token();
    register(
        &app,
        ben,
        &PushTarget::Fcm {
            token: busy.clone(),
        },
    )
    .await?;
    receiver.answer(&busy, 429, &[("retry-after", "2")], "{}");
    send(&app, &circle, facilitator, b"fourth").await?;
    receiver
        .wait_for(&Service::Fcm(busy.clone()), 1, ARRIVES)
        .await?;
    receiver.answer(&busy, 200, &[], "{}");
    receiver
        .wait_for(&Service::Fcm(busy.clone()), 2, ARRIVES)
        .await?;
    assert!(status(&app, ben).await?.working);
    assert!(
        receiver.violations().is_empty(),
        "{:?}",
        receiver.violations()
    );
    Ok(())
}

async fn wakes_queued_before_a_restart_go_out_after_it(db: Db) -> Result<()> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    let interval = 4;
    let app = TestApp::spawn_with(db, |c| keys.configure(c, &receiver, interval)).await?;
    let (circle, tokens) = app.opaque_circle(1).await?;
    let browser = Subscriber::new()?;
    register(&app, &tokens[1], &browser.target(&receiver)).await?;
    send(&app, &circle, &tokens[0], b"one").await?;
    receiver
        .wait_for(&Service::WebPush(browser.id.clone()), 1, ARRIVES)
        .await?;
    // The server has recorded that wake (one cut off mid-send is given back
    // by a graceful stop: `release_wakes`).
    let deadline = tokio::time::Instant::now() + ARRIVES;
    while status(&app, &tokens[1]).await?.last_wake_at.is_none() {
        if tokio::time::Instant::now() > deadline {
            bail!("the first wake was never recorded");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next wake must wait out the interval; the server stops first.
    send(&app, &circle, &tokens[0], b"two").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let test_db: TestDb = app.stop().await?;
    assert_eq!(
        receiver.received().len(),
        1,
        "the second wake was not due yet"
    );
    let app = TestApp::start(test_db, |c| keys.configure(c, &receiver, interval)).await?;
    receiver
        .wait_for(&Service::WebPush(browser.id.clone()), 2, ARRIVES)
        .await?;
    settle().await;
    assert_eq!(
        receiver.received().len(),
        2,
        "sent once, not once per start"
    );
    drop(app);
    Ok(())
}

async fn a_node_killed_under_a_live_socket_does_not_swallow_its_wakes(db: Db) -> Result<()> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    let (interval, ttl) = (1, 2);
    let app = TestApp::spawn_with(db, |c| keys.configure(c, &receiver, interval)).await?;
    let (circle, tokens) = app.opaque_circle(1).await?;
    let seed = app.signing_seed;
    let test_db = app.stop().await?;
    let mut settings = keys.web_push_settings(interval);
    settings.push(("HEARTH_PUSH__PRESENCE_TTL_SECS".into(), ttl.to_string()));

    // Sam follows the circle on a node; the node records that he is live.
    let node = ServerProcess::start_with(&test_db, &seed, &settings).await?;
    let browser = Subscriber::new()?;
    let sams = Service::WebPush(browser.id.clone());
    let registered = reqwest::Client::new()
        .put(format!("{}/v1/devices/current/push", node.address))
        .bearer_auth(&tokens[1])
        .json(&browser.target(&receiver))
        .send()
        .await?;
    assert!(registered.status().is_success());
    let mut stream = Stream::open(&node.address, &tokens[1]).await?;
    stream.resume(&[(&circle, 0)]).await?;
    let recorded = tokio::time::Instant::now() + ARRIVES;
    while !test_db
        .dump()
        .await?
        .iter()
        .any(|row| row.starts_with("push_presence: "))
    {
        if tokio::time::Instant::now() > recorded {
            bail!("the node never recorded Sam's socket");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = receiver.received_by(&sams).len();

    // The node is killed (no goodbye: its word that Sam is live stays in
    // the database); a new one starts on the same data, and Alice writes.
    node.kill().await?;
    drop(stream);
    let node = ServerProcess::start_with(&test_db, &seed, &settings).await?;
    let sent = tokio::time::Instant::now();
    send_at(&node.address, &circle, &tokens[0], b"see you thursday").await?;
    receiver.wait_for(&sams, before + 1, ARRIVES).await?;
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(ttl + 4),
        "woken once the dead node's word lapsed ({ttl} s), not minutes later: {took:?}"
    );
    node.stop().await?;
    Ok(())
}

async fn two_hundred_sockets_opening_at_once_are_recorded_in_a_few_writes(db: Db) -> Result<()> {
    let (app, _keys, _receiver) = with_push(db, 30).await?;
    let mut tokens = Vec::new();
    for _ in 0..200 {
        tokens.push(app.signed_in().await?.1.access_token);
    }
    let before = app.counter("hearth_push_presence_writes_total").await?;
    let started = std::time::Instant::now();
    // A mass reconnect: every phone's socket at once (a node restarted, a
    // network came back).
    let sockets = futures_util::future::join_all(tokens.iter().map(|t| app.stream(t))).await;
    let sockets: Vec<Stream> = sockets.into_iter().collect::<Result<_>>()?;
    let took = started.elapsed();
    let writes = app.counter("hearth_push_presence_writes_total").await? - before;
    // At most one write per 25 ms gathering window, whatever the arrival rate.
    let windows = (took.as_secs_f64() / 0.025).ceil() + 2.0;
    eprintln!("200 sockets in {took:?}: {writes} presence writes");
    assert!(writes >= 1.0, "presence writes are counted");
    assert!(
        writes <= windows.min(100.0),
        "200 sockets in {took:?} took {writes} presence writes (recorded in batches, each \
         socket before it is ready)"
    );
    let rows = app
        .db
        .dump()
        .await?
        .iter()
        .filter(|row| row.starts_with("push_presence: "))
        .count();
    assert_eq!(rows, 200, "every socket is recorded");
    drop(sockets);
    Ok(())
}

async fn registration_refuses_what_the_server_will_not_call(db: Db) -> Result<()> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    // This server speaks Web Push only, with production rules.
    let app = TestApp::spawn_with(db, |c| {
        keys.configure(c, &receiver, 30);
        c.push.allow_private_endpoints = false;
        c.push.apns.key = None;
        c.push.fcm.service_account = None;
    })
    .await?;
    let (_, login) = app.signed_in().await?;
    let token = &login.access_token;
    let path = "/v1/devices/current/push";
    expect_error(app.get(path, token).await?, 404, ErrorCode::NotFound).await?;
    let fcm = PushTarget::Fcm { token: fcm_token() };
    expect_error(
        app.put_json(path, token, &fcm).await?,
        422,
        ErrorCode::PushUnconfigured,
    )
    .await?;
    let subscriber = Subscriber::new()?;
    let PushTarget::WebPush { p256dh, auth, .. } = subscriber.target(&receiver) else {
        bail!("a Web Push target");
    };
    let at = |endpoint: &str| PushTarget::WebPush {
        endpoint: endpoint.into(),
        p256dh: p256dh.clone(),
        auth: auth.clone(),
    };
    for inward in [
        receiver.url("/wp/x"),
        "https://127.0.0.1/wp".into(),
        "https://10.0.0.1/wp".into(),
        "https://169.254.169.254/latest/meta-data".into(),
        "https://[::1]/wp".into(),
        "https://localhost/wp".into(),
        "http://push.example.com/wp".into(),
    ] {
        expect_error(
            app.put_json(path, token, &at(&inward)).await?,
            422,
            ErrorCode::PushEndpointRefused,
        )
        .await?;
    }
    let short_key = PushTarget::WebPush {
        endpoint: "https://push.example.com/wp/1".into(),
        p256dh: Base64Bytes::from(rand_bytes::<33>().to_vec()),
        auth: auth.clone(),
    };
    expect_error(
        app.put_json(path, token, &short_key).await?,
        422,
        ErrorCode::InvalidRequest,
    )
    .await?;
    let unknown = serde_json::json!({"kind": "carrier_pigeon", "token": "x"});
    expect_error(
        app.put_json(path, token, &unknown).await?,
        400,
        ErrorCode::BadRequest,
    )
    .await?;
    expect_error(app.delete(path, token).await?, 404, ErrorCode::NotFound).await?;
    expect_error(
        app.http.get(app.url(path)).send().await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;

    // A public endpoint is accepted (never called here: nothing waits).
    let public = at("https://push.example.com/wp/abc");
    register(&app, token, &public).await?;
    assert_eq!(app.delete(path, token).await?.status(), 204);
    expect_error(app.get(path, token).await?, 404, ErrorCode::NotFound).await?;

    // A server without push refuses every kind, and says so.
    let plain = TestApp::spawn(Db::Sqlite).await?;
    let (_, login) = plain.signed_in().await?;
    expect_error(
        plain.put_json(path, &login.access_token, &public).await?,
        422,
        ErrorCode::PushUnconfigured,
    )
    .await?;
    let services: PushServices = plain
        .get("/v1/push/services", &login.access_token)
        .await?
        .json()
        .await?;
    assert_eq!(services.web_push_vapid_key, None);

    // Redirects are not followed, and revoking a device drops its target.
    let relaxed = TestApp::spawn_with(Db::Sqlite, |c| keys.configure(c, &receiver, 30)).await?;
    let (circle, tokens) = relaxed.opaque_circle(1).await?;
    let moved = Subscriber::new()?;
    let elsewhere = Subscriber::new()?;
    let location = receiver.url(&format!("/wp/{}", elsewhere.id));
    receiver.answer(&moved.id, 307, &[("location", location.as_str())], "");
    register(&relaxed, &tokens[1], &moved.target(&receiver)).await?;
    send(&relaxed, &circle, &tokens[0], b"follow me").await?;
    receiver
        .wait_for(&Service::WebPush(moved.id.clone()), 1, ARRIVES)
        .await?;
    settle().await;
    assert!(
        receiver
            .received_by(&Service::WebPush(elsewhere.id.clone()))
            .is_empty()
    );
    let devices: serde_json::Value = relaxed.get("/v1/devices", &tokens[1]).await?.json().await?;
    let me = devices["devices"][0]["device_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        relaxed
            .delete(&format!("/v1/devices/{me}"), &tokens[1])
            .await?
            .status(),
        204
    );
    let storage = relaxed.db.storage().await?;
    assert!(storage.push_target(me.parse()?).await?.is_none());
    Ok(())
}

async fn two_nodes_send_each_wake_once(db: Db) -> Result<()> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    let (first, second) = TestApp::two_nodes(db, |c| keys.configure(c, &receiver, 60)).await?;
    // A circle of twelve phones asleep; a burst of messages arrives through
    // both nodes, so both queue wakes for the same phones and both senders
    // race to claim them.
    let (circle, tokens) = first.opaque_circle(12).await?;
    // The last phone's app is open, its socket on the second node (open
    // before it registers: wakes for the circle's setup may be on their way).
    let mut live = second.stream(&tokens[12]).await?;
    live.resume(&[(&circle, 0)]).await?;
    let mut subscribers = Vec::new();
    for token in &tokens[1..] {
        let subscriber = Subscriber::new()?;
        register(&first, token, &subscriber.target(&receiver)).await?;
        subscribers.push(subscriber);
    }
    for i in 0..10u8 {
        let node = if i % 2 == 0 { &first } else { &second };
        send(node, &circle, &tokens[0], &[b'm', i]).await?;
    }
    let (asleep, awake) = subscribers.split_at(11);
    for subscriber in asleep {
        receiver
            .wait_for(&Service::WebPush(subscriber.id.clone()), 1, ARRIVES)
            .await?;
    }
    settle().await;
    settle().await;
    for subscriber in asleep {
        assert_eq!(
            receiver
                .received_by(&Service::WebPush(subscriber.id.clone()))
                .len(),
            1,
            "one wake per phone, whichever node sent it"
        );
    }
    assert!(
        receiver
            .received_by(&Service::WebPush(awake[0].id.clone()))
            .is_empty(),
        "live on the other node: not woken"
    );
    live.close().await?;
    assert!(
        receiver.violations().is_empty(),
        "{:?}",
        receiver.violations()
    );
    Ok(())
}

async fn through_the_sdk_a_woken_phone_finds_what_waits(db: Db) -> Result<()> {
    let (app, _keys, receiver) = with_push(db, 30).await?;
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(&app, &dirs[..2]).await?;
    let [alice, sam] = &clients[..] else {
        bail!("two clients")
    };
    // Sam's phone subscribes through its distributor; Alice's through FCM.
    let services = sam.push_services().await?;
    assert!(services.web_push_vapid_key.is_some());
    assert_eq!(sam.push_status().await?, None);
    let phone = Subscriber::new()?;
    assert!(sam.set_push_target(&phone.target(&receiver)).await?.working);
    let alice_token = fcm_token();
    alice
        .set_push_target(&PushTarget::Fcm {
            token: alice_token.clone(),
        })
        .await?;

    // Alice writes while Sam's app sleeps: his phone is woken, and on
    // waking the app finds the message.
    alice.send_text(&circle, "Thursday moves to 7pm").await?;
    let wakes = receiver
        .wait_for(&Service::WebPush(phone.id.clone()), 1, ARRIVES)
        .await?;
    if let Some(plain) = phone.decrypt(&wakes[0].body).await? {
        assert_eq!(plain, WAKE_PAYLOAD);
    }
    let woken = sam.on_wake().await?;
    assert_eq!(woken.new_messages, vec![(circle.clone(), 1)]);
    let history = sam.history(&circle).await?;
    assert!(history.iter().any(|m| matches!(
        &m.envelope.content,
        Content::Text { body, .. } if body == "Thursday moves to 7pm"
    )));
    assert!(
        sam.push_status()
            .await?
            .is_some_and(|s| s.last_wake_at.is_some())
    );

    // Kim asks to join: Alice, the facilitator, is woken. Alice approves:
    // Kim's iPhone is woken by the Welcome and joins on waking.
    let kim = client(&app, &dirs[2]).await?;
    kim.register(None).await?;
    let kim_token = apns_token();
    kim.set_push_target(&PushTarget::Apns {
        token: kim_token.clone(),
        topic: None,
        environment: None,
    })
    .await?;
    let link = alice.create_invite(&circle).await?;
    let request = kim
        .redeem_invite(&link, "Sam said this group helps")
        .await?;
    receiver
        .wait_for(&Service::Fcm(alice_token.clone()), 1, ARRIVES)
        .await?;
    let waiting = alice.join_requests(&circle).await?;
    assert_eq!(waiting.len(), 1);
    alice.approve(&circle, request).await?;
    receiver
        .wait_for(&Service::Apns(kim_token.clone()), 1, ARRIVES)
        .await?;
    let woken = kim.on_wake().await?;
    assert_eq!(woken.joined, vec![circle.clone()]);

    // Sam turns notifications off: no more wakes for him.
    sam.remove_push_target().await?;
    assert_eq!(sam.push_status().await?, None);
    sam.remove_push_target().await?;
    assert!(
        receiver.violations().is_empty(),
        "{:?}",
        receiver.violations()
    );
    Ok(())
}

async fn the_push_services_see_traffic_not_circles(db: Db) -> Result<()> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    // Wakes wait a random delay of up to an hour: one circle's twelve phones
    // are not woken in the same instant.
    let app = TestApp::spawn_with(db, |c| {
        keys.configure(c, &receiver, 30);
        c.push.max_delay_secs = 3600;
    })
    .await?;
    let (circle, tokens) = app.opaque_circle(12).await?;
    for token in &tokens[1..] {
        register(&app, token, &Subscriber::new()?.target(&receiver)).await?;
    }
    let before = hearth_server::now();
    send(&app, &circle, &tokens[0], b"hello everyone").await?;
    // Wakes are queued just after the send is answered: look until all
    // twelve are there (or a wake's time has passed), then once more.
    let deadline = tokio::time::Instant::now() + ARRIVES;
    let (due, sent) = loop {
        let due: Vec<i64> = app
            .db
            .dump()
            .await?
            .iter()
            .filter_map(|row| row.strip_prefix("push_wakes: "))
            .filter_map(|row| {
                let fields: Vec<&str> = row.trim_matches(['(', ')']).split(',').collect();
                fields.get(1)?.parse().ok()
            })
            .collect();
        let sent = receiver.received().len();
        if due.len() + sent >= 12 || tokio::time::Instant::now() > deadline {
            break (due, sent);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(due.len() + sent, 12, "one wake per phone, queued or sent");
    assert!(due.iter().all(|d| *d >= before && *d <= before + 3601));
    let distinct: HashSet<i64> = due.iter().copied().collect();
    assert!(
        distinct.len() > 1,
        "twelve wakes, spread over the hour: {due:?}"
    );

    // Decoys: a phone in no circle with anything new is woken anyway, with
    // the same wake.
    let decoyed = TestApp::spawn_with(Db::Sqlite, |c| {
        keys.configure(c, &receiver, 30);
        c.push.decoys_per_hour = 36_000;
    })
    .await?;
    let (_, lonely) = decoyed.signed_in().await?;
    let phone = Subscriber::new()?;
    register(&decoyed, &lonely.access_token, &phone.target(&receiver)).await?;
    let wakes = receiver
        .wait_for(&Service::WebPush(phone.id.clone()), 1, ARRIVES)
        .await?;
    if let Some(plain) = phone.decrypt(&wakes[0].body).await? {
        assert_eq!(plain, WAKE_PAYLOAD, "a decoy is a wake like any other");
    }

    // The metrics count, and name nothing.
    let metrics = decoyed.metrics().await?;
    for name in ["hearth_push_wakes_sent_total", "hearth_push_decoys_total"] {
        assert!(metrics.contains(name), "{name} in /metrics");
    }
    assert!(!metrics.contains(&phone.id));
    assert!(
        receiver.violations().is_empty(),
        "{:?}",
        receiver.violations()
    );
    Ok(())
}

/// A member with an iPhone asleep in a fresh circle; the facilitator
/// writes: what APNs receives.
async fn wake_an_iphone(
    app: &TestApp,
    receiver: &PushReceiver,
) -> Result<Vec<hearth_tests::push::Received>> {
    let (circle, tokens) = app.opaque_circle(1).await?;
    let iphone = apns_token();
    let target = PushTarget::Apns {
        token: iphone.clone(),
        topic: None,
        environment: None,
    };
    register(app, &tokens[1], &target).await?;
    send(app, &circle, &tokens[0], b"see you thursday").await?;
    receiver.wait_for(&Service::Apns(iphone), 1, ARRIVES).await
}

async fn an_operator_chooses_the_iphone_wake_a_localised_alert_or_a_background_push(
    db: Db,
) -> Result<()> {
    let keys = PushKeys::generate()?;
    let receiver = PushReceiver::start(&keys).await?;
    // The app ships its own words for the placeholder, in every language.
    let app = TestApp::spawn_with(db, |c| {
        keys.configure(c, &receiver, 30);
        c.push.apns.alert_loc_key = Some("HEARTH_NEW_ACTIVITY".into());
    })
    .await?;
    let woken = wake_an_iphone(&app, &receiver).await?;
    assert_eq!(
        String::from_utf8_lossy(&woken[0].body),
        r#"{"aps":{"alert":{"loc-key":"HEARTH_NEW_ACTIVITY"},"mutable-content":1}}"#
    );
    app.stop().await?;

    // Another operator keeps silent background pushes.
    let app = TestApp::spawn_with(db, |c| {
        keys.configure(c, &receiver, 30);
        c.push.apns.wake = hearth_server::config::ApnsWake::Background;
    })
    .await?;
    let woken = wake_an_iphone(&app, &receiver).await?;
    assert_eq!(
        String::from_utf8_lossy(&woken[0].body),
        r#"{"aps":{"content-available":1}}"#
    );
    assert_eq!(woken[0].header("apns-push-type"), Some("background"));
    assert_eq!(woken[0].header("apns-priority"), Some("5"));
    assert_eq!(woken[0].header("apns-collapse-id"), None);
    assert!(
        receiver.violations().is_empty(),
        "{:?}",
        receiver.violations()
    );
    app.stop().await?;
    Ok(())
}

/// What an operator watches. Ada's phone service is overloaded (`503`,
/// try again in two minutes); Ben's app was uninstalled (`404
/// UNREGISTERED`). After a message, `/metrics` counts Ada's wake as failed
/// for a `retry` and Ben's target as dead, `unregistered`, by transport;
/// the queue holds Ada's wake (depth 1, none due yet); the append batch
/// sizes are there; and `/readyz` says the push queue is `ok` (nothing has
/// waited past its time). No id is in any of it.
async fn an_operator_sees_the_push_queue_and_why_wakes_failed(db: Db) -> Result<()> {
    let (app, _keys, receiver) = with_push(db, 30).await?;
    let (circle, tokens) = app.opaque_circle(2).await?;
    let (ada_token, ben_token) = (fcm_token(), fcm_token());
    receiver.answer(&ada_token, 503, &[("retry-after", "120")], "");
    receiver.answer(
        &ben_token,
        404,
        &[("content-type", "application/json")],
        FCM_UNREGISTERED,
    );
    for (token, fcm) in [(&tokens[1], &ada_token), (&tokens[2], &ben_token)] {
        register(&app, token, &PushTarget::Fcm { token: fcm.clone() }).await?;
    }
    send(&app, &circle, &tokens[0], b"see you Thursday").await?;
    receiver
        .wait_for(&Service::Fcm(ada_token.clone()), 1, ARRIVES)
        .await?;
    dead_status(&app, &tokens[2]).await?;

    let text = app.metrics().await?;
    let line = |name: &str, labels: &[&str]| {
        text.lines()
            .find(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(
        line(
            "hearth_push_wakes_failed_total",
            &["kind=\"fcm\"", "reason=\"retry\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        line(
            "hearth_push_targets_dead_total",
            &["kind=\"fcm\"", "reason=\"unregistered\""]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(line("hearth_push_queue_depth", &[]), Some(1.0), "{text}");
    assert_eq!(line("hearth_push_queue_due", &[]), Some(0.0), "{text}");
    assert_eq!(line("hearth_push_queue_oldest_due_seconds", &[]), Some(0.0));
    assert!(text.contains("hearth_append_batch_size"), "{text}");
    for id in [&ada_token, &ben_token] {
        assert!(!text.contains(id.as_str()), "no push token in the metrics");
    }
    assert!(!text.contains(&circle.to_string()), "no circle id");

    let ready: serde_json::Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(ready["push"], "ok");
    assert_eq!(ready["database"], "ok");
    Ok(())
}
