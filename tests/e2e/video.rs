//! Video: a member gets a token to the circle's room that LiveKit's own
//! verifier accepts, for that room only, with opaque names; outsiders and
//! removed members get the usual 404; without a video server the endpoint
//! says what to configure.

use anyhow::{Context as _, Result, bail};
use hearth_client::ClientError;
use hearth_protocol::ErrorCode;
use hearth_protocol::video::CallAccess;
use hearth_tests::clients::{data_dirs, enrolled};
use hearth_tests::mls::{Member, strangers_and_the_removed_get_404};
use hearth_tests::{Db, TestApp, expect_error, hex, on_both_databases};
use secrecy::SecretString;
use serde_json::Value;

on_both_databases!(
    members_get_tokens_livekit_accepts_for_their_circles_room_only,
    video_is_off_until_configured,
    members_share_media_keys_and_a_removed_member_cannot_follow,
    no_two_calls_of_a_member_ever_share_a_key_and_nonce,
    a_revoked_laptop_and_a_member_who_left_lose_the_call_while_the_facilitator_sleeps,
    whoever_leaves_the_roster_is_dropped_from_the_room_and_again_if_they_come_back,
    livekits_own_frame_encryption_runs_on_keys_from_the_circle,
);

const API_KEY: &str = "devkey";
const API_SECRET: &str = "hearth-test-secret-0123456789abcdef";

async fn with_video(db: Db) -> Result<TestApp> {
    TestApp::spawn_with(db, |c| {
        c.video.url = Some("wss://sfu.localhost".into());
        c.video.api_key = Some(API_KEY.into());
        c.video.api_secret = Some(SecretString::from(API_SECRET));
        c.video.token_ttl_secs = 300;
    })
    .await
}

/// Checks a token with LiveKit's own verifier (PyPI `livekit-api`, which
/// scripts/test installs) and returns the claims it read.
async fn livekit_verifies(token: &str) -> Result<Option<Value>> {
    let Ok(python) = std::env::var("TEST_CHECKER_PYTHON") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!("CI=true but TEST_CHECKER_PYTHON is not set (scripts/test installs it)");
        }
        eprintln!("SKIPPED LiveKit's verifier: run scripts/test, which installs it");
        return Ok(None);
    };
    let script = r#"
import json, sys
from livekit import api
claims = api.TokenVerifier(sys.argv[1], sys.argv[2]).verify(sys.argv[3])
v = claims.video
print(json.dumps({"identity": claims.identity, "room": v.room, "room_join": v.room_join,
    "can_publish": v.can_publish, "can_subscribe": v.can_subscribe,
    "can_publish_data": v.can_publish_data, "room_admin": v.room_admin,
    "room_create": v.room_create, "room_list": v.room_list, "metadata": claims.metadata,
    "name": claims.name}))
"#;
    let output = tokio::process::Command::new(python)
        .args(["-c", script, API_KEY, API_SECRET, token])
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "LiveKit refused the token: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(Some(serde_json::from_slice(&output.stdout)?))
}

/// The token's claims, read without checking (the check is LiveKit's).
fn claims(token: &str) -> Result<Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).context("a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Alice (facilitating), Sam and Kim in a circle, each in its call.
async fn three_in_a_call(
    app: &TestApp,
) -> Result<(
    Vec<tempfile::TempDir>,
    Vec<hearth_client::Client>,
    hearth_protocol::CircleId,
    Vec<hearth_client::Call>,
)> {
    let dirs = data_dirs(3)?;
    let (clients, circle) = enrolled(app, &dirs).await?;
    let mut calls = Vec::new();
    for client in &clients {
        calls.push(client.join_call(&circle).await?);
    }
    Ok((dirs, clients, circle, calls))
}

async fn members_get_tokens_livekit_accepts_for_their_circles_room_only(db: Db) -> Result<()> {
    let captured = hearth_tests::captured_logs();
    let app = with_video(db).await?;
    let mut facilitator = Member::sign_up(&app).await?;
    let mut sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 2).await?;
    let circle = facilitator.create_circle(&app).await?;
    let add = facilitator.add_commit(&app, &[&sam]).await?;
    facilitator.commit_accepted(&app, &circle, &add).await?;
    sam.join(&app).await?;
    let call = format!("/v1/circles/{circle}/call");

    let mine: CallAccess = app.post(&call, facilitator.token()).await?.json().await?;
    let sams: CallAccess = app.post(&call, sam.token()).await?.json().await?;
    assert_eq!(mine.url, "wss://sfu.localhost");
    assert_eq!(mine.room, sams.room, "one room per circle");
    assert_ne!(mine.identity, sams.identity, "one identity per device");
    let circle_text = circle.to_string();
    for opaque in [&mine.room, &mine.identity, &sams.identity] {
        assert_eq!(opaque.len(), 32, "128 bits in hex");
        assert!(!opaque.contains(&circle_text));
        assert!(!opaque.contains(&hex(circle.as_bytes())));
        assert!(!opaque.contains(&facilitator.device.device_id.to_string()));
    }

    let read = claims(&sams.token)?;
    assert_eq!(read["iss"], API_KEY);
    assert_eq!(read["sub"], sams.identity.as_str());
    let (nbf, exp) = (
        read["nbf"].as_i64().unwrap_or(0),
        read["exp"].as_i64().unwrap_or(0),
    );
    assert_eq!(exp - nbf, 300, "the configured lifetime");
    assert_eq!(exp, sams.expires_at);
    let grant = read["video"].as_object().context("a video grant")?;
    let mut granted: Vec<&str> = grant.keys().map(String::as_str).collect();
    granted.sort();
    assert_eq!(
        granted,
        [
            "canPublish",
            "canPublishData",
            "canSubscribe",
            "room",
            "roomJoin"
        ],
        "nothing beyond joining this room"
    );
    assert_eq!(grant["canPublishData"], false);

    if let Some(verified) = livekit_verifies(&sams.token).await? {
        assert_eq!(verified["identity"], sams.identity.as_str());
        assert_eq!(verified["room"], sams.room.as_str());
        assert_eq!(verified["room_join"], true);
        assert_eq!(verified["can_publish"], true);
        assert_eq!(verified["can_subscribe"], true);
        assert_eq!(verified["can_publish_data"], false);
        for nothing in ["room_admin", "room_create", "room_list"] {
            assert!(
                verified[nothing].is_null() || verified[nothing] == false,
                "{nothing}"
            );
        }
        assert_eq!(
            (verified["metadata"].as_str(), verified["name"].as_str()),
            (Some(""), Some(""))
        );
        // A token signed with another secret is refused by LiveKit.
        let forged = {
            use jsonwebtoken::{EncodingKey, Header, encode};
            let key = EncodingKey::from_secret(b"not-the-secret-not-the-secret-000");
            encode(&Header::default(), &read, &key)?
        };
        assert!(livekit_verifies(&forged).await.is_err());
    }

    // Outsiders and removed members: the same 404 as any circle route.
    strangers_and_the_removed_get_404(&app, &mut facilitator, &sam, &circle, async |token| {
        app.post(&call, token).await
    })
    .await?;

    // Nothing of it reaches the logs.
    let logged = String::from_utf8_lossy(&captured.bytes()).to_string();
    for secret in [
        &mine.room,
        &mine.identity,
        &sams.identity,
        &mine.token,
        &sams.token,
    ] {
        assert!(
            !logged.contains(secret.as_str()),
            "a call detail was logged"
        );
    }
    Ok(())
}

async fn video_is_off_until_configured(app: TestApp) -> Result<()> {
    let mut facilitator = Member::sign_up(&app).await?;
    let circle = facilitator.create_circle(&app).await?;
    let answer = app
        .post(&format!("/v1/circles/{circle}/call"), facilitator.token())
        .await?;
    let body = expect_error(answer, 503, ErrorCode::VideoUnconfigured).await?;
    assert!(body.message.contains("video.url"), "says what to configure");
    Ok(())
}

async fn members_share_media_keys_and_a_removed_member_cannot_follow(db: Db) -> Result<()> {
    let app = with_video(db).await?;
    let (_dirs, clients, circle, calls) = three_in_a_call(&app).await?;
    let ([alice, sam, kim], [a, s, k]) = (&clients[..], &calls[..]) else {
        bail!("three clients")
    };
    assert_eq!(
        (a.room.as_str(), a.url.as_str()),
        (s.room.as_str(), "wss://sfu.localhost")
    );
    let epoch = a.keys.epoch()?;
    assert_eq!(
        (s.keys.epoch()?, k.keys.epoch()?),
        (epoch, epoch),
        "one epoch, one base key"
    );
    let ids = [a.keys.key_id()?, s.keys.key_id()?, k.keys.key_id()?];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "a key id per sender"
    );

    let hello = a.keys.encrypt(b"alice's frame")?;
    assert_eq!(s.keys.decrypt(&hello)?, b"alice's frame");
    assert_eq!(k.keys.decrypt(&hello)?, b"alice's frame");
    assert_eq!(
        a.keys.decrypt(&s.keys.encrypt(b"sam's frame")?)?,
        b"sam's frame"
    );

    // Kim is removed: the others move to the new epoch's keys by
    // themselves; Kim cannot follow.
    let changes = s.keys.changes()?;
    let kim_id = kim.device_id().await?.context("registered")?;
    alice.remove_devices(&circle, &[kim_id]).await?;
    assert!(a.keys.epoch()? > epoch, "the committer moved on");
    sam.sync(&circle).await?;
    assert!(changes.has_changed()?, "sam was told");
    assert_eq!(s.keys.epoch()?, a.keys.epoch()?);
    let after = a.keys.encrypt(b"after kim left")?;
    assert_eq!(s.keys.decrypt(&after)?, b"after kim left");
    assert!(kim.sync(&circle).await.is_err(), "kim reads nothing new");
    assert!(
        k.keys.decrypt(&after).is_err(),
        "nor decrypts the new epoch"
    );
    assert_eq!(k.keys.epoch()?, epoch);

    // A frame from before the change still plays for a while, then not.
    assert_eq!(s.keys.decrypt(&hello)?, b"alice's frame");
    s.keys.set_grace(std::time::Duration::ZERO)?;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(matches!(
        s.keys.decrypt(&hello),
        Err(ClientError::KeyUnavailable)
    ));
    Ok(())
}

/// The key id and counter of an SFrame (the key and nonce follow from them
/// and the epoch).
fn key_and_counter(frame: &[u8]) -> Result<(u64, u64)> {
    let frame = sframe::frame::EncryptedFrame::try_new(frame)?;
    Ok((frame.header().key_id(), frame.header().counter()))
}

async fn no_two_calls_of_a_member_ever_share_a_key_and_nonce(db: Db) -> Result<()> {
    let app = with_video(db).await?;
    let dirs = data_dirs(2)?;
    let (mut clients, circle) = enrolled(&app, &dirs).await?;
    // Sam joins the call twice in one epoch (a second screen, a rejoin after
    // the app lost the first handle), and once more after a restart.
    let first = clients[1].join_call(&circle).await?;
    let second = clients[1].join_call(&circle).await?;
    let epoch = first.keys.epoch()?;
    let (one, two) = (
        b"sam's first camera".to_vec(),
        b"a second picture!!".to_vec(),
    );
    let mut frames = vec![
        (first.keys.encrypt(&one)?, one.clone()),
        (second.keys.encrypt(&two)?, two.clone()),
        (first.keys.encrypt(&two)?, two.clone()),
    ];
    clients.pop();
    let sam = hearth_tests::clients::client(&app, &dirs[1]).await?;
    let restarted = sam.join_call(&circle).await?;
    assert_eq!(
        restarted.keys.epoch()?,
        epoch,
        "the same epoch after the restart"
    );
    frames.push((restarted.keys.encrypt(&one)?, one.clone()));

    let mut seen = std::collections::HashSet::new();
    for (frame, _) in &frames {
        assert!(
            seen.insert(key_and_counter(frame)?),
            "a key id and counter (so a key and nonce) used twice in one epoch"
        );
    }
    // Same-length plaintexts under one key and nonce would give ciphertexts
    // whose XOR is the plaintexts' XOR: none do.
    let xor = |a: &[u8], b: &[u8]| a.iter().zip(b).map(|(x, y)| x ^ y).collect::<Vec<_>>();
    for (i, (a, pa)) in frames.iter().enumerate() {
        for (b, pb) in &frames[i + 1..] {
            let (ca, cb) = (&a[a.len() - pa.len() - 16..], &b[b.len() - pb.len() - 16..]);
            if pa.len() == pb.len() {
                assert_ne!(
                    xor(&ca[..pa.len()], &cb[..pb.len()]),
                    xor(pa, pb),
                    "keystream reused"
                );
            }
        }
    }
    // Every frame still plays for the facilitator.
    let alice = clients[0].join_call(&circle).await?;
    for (frame, plain) in &frames {
        assert_eq!(&alice.keys.decrypt(frame)?, plain);
    }
    Ok(())
}

async fn a_revoked_laptop_and_a_member_who_left_lose_the_call_while_the_facilitator_sleeps(
    db: Db,
) -> Result<()> {
    let app = with_video(db).await?;
    let dirs = data_dirs(4)?;
    let (clients, circle) = enrolled(&app, &dirs[..3]).await?;
    let [_alice, phone, kim] = &clients[..] else {
        bail!("three clients")
    };
    // Sam's laptop joins the circle through his phone; everyone is in the call.
    let laptop = hearth_tests::clients::client(&app, &dirs[3]).await?;
    let laptop_id = laptop.register(Some(&phone.link_token().await?)).await?;
    phone.sync(&circle).await?;
    laptop.accept_welcomes().await?;
    kim.sync(&circle).await?;
    let (on_laptop, on_kims) = (
        laptop.join_call(&circle).await?,
        kim.join_call(&circle).await?,
    );
    assert_eq!(on_laptop.keys.epoch()?, on_kims.keys.epoch()?);
    let before = on_laptop.keys.epoch()?;

    // The laptop is lost. Sam revokes it from his phone; Alice, the only
    // facilitator, is asleep and syncs nothing from here on.
    phone.revoke_device(laptop_id).await?;
    assert!(
        !phone.members(&circle).await?.contains(&laptop_id),
        "the phone took the laptop out of the group itself"
    );
    kim.sync(&circle).await?;
    assert!(on_kims.keys.epoch()? > before, "Kim's call moved on");
    let frame = on_kims.keys.encrypt(b"kim, after the laptop was lost")?;
    assert!(
        on_laptop.keys.decrypt(&frame).is_err(),
        "the lost laptop cannot follow"
    );

    // Sam leaves too; Kim's next sync takes his leaf out, facilitator or not.
    let on_phone = phone.join_call(&circle).await?;
    let sam_id = phone.device_id().await?.context("registered")?;
    phone.leave(&circle).await?;
    kim.sync(&circle).await?;
    assert!(!kim.members(&circle).await?.contains(&sam_id));
    let frame = on_kims.keys.encrypt(b"kim, after sam left")?;
    assert!(
        on_phone.keys.decrypt(&frame).is_err(),
        "Sam has left the call's keys"
    );
    Ok(())
}

async fn whoever_leaves_the_roster_is_dropped_from_the_room_and_again_if_they_come_back(
    db: Db,
) -> Result<()> {
    let livekit = hearth_tests::sfu::LiveKitStandIn::start(API_KEY, API_SECRET).await?;
    let ttl = 2;
    let app = TestApp::spawn_with(db, |c| {
        c.video.url = Some(livekit.ws_url());
        c.video.api_key = Some(API_KEY.into());
        c.video.api_secret = Some(SecretString::from(API_SECRET));
        c.video.token_ttl_secs = ttl;
    })
    .await?;
    let dirs = data_dirs(5)?;
    let (clients, circle) = enrolled(&app, &dirs[..4]).await?;
    let [alice, sam, kim, lee] = &clients[..] else {
        bail!("four clients")
    };
    let laptop = hearth_tests::clients::client(&app, &dirs[4]).await?;
    let laptop_id = laptop.register(Some(&sam.link_token().await?)).await?;
    sam.sync(&circle).await?;
    laptop.accept_welcomes().await?;
    // Everyone is in the call.
    let mut identities = Vec::new();
    for member in [alice, sam, kim, lee, &laptop] {
        let call = member.join_call(&circle).await?;
        livekit.join(&call.room, &call.identity);
        identities.push((call.room, call.identity));
    }
    let [alices, sams, kims, lees, laptops] = &identities[..] else {
        bail!("five calls")
    };
    let dropped = async |(room, identity): &(String, String)| {
        livekit
            .wait_until_out(room, identity, std::time::Duration::from_secs(10))
            .await
    };

    // Alice removes Kim; Lee leaves; Sam revokes his laptop, then deletes
    // his account: each is dropped from the room by the server.
    let kim_id = kim.device_id().await?.context("registered")?;
    alice.remove_devices(&circle, &[kim_id]).await?;
    assert!(dropped(kims).await, "the removed member is dropped");
    lee.leave(&circle).await?;
    assert!(dropped(lees).await, "the member who left is dropped");
    sam.revoke_device(laptop_id).await?;
    assert!(dropped(laptops).await, "the revoked laptop is dropped");
    sam.delete_account().await?;
    assert!(dropped(sams).await, "a deleted account's device is dropped");
    assert!(livekit.is_in(&alices.0, &alices.1), "Alice stays");

    // Kim comes back with the token she still holds: dropped again once it
    // could no longer admit her.
    livekit.join(&kims.0, &kims.1);
    assert!(
        dropped(kims).await,
        "a rejoin with an old token is dropped too"
    );
    let removals = livekit.removals();
    assert!(
        removals.iter().all(|r| r.identity != alices.1),
        "nobody else"
    );
    assert!(
        removals.iter().filter(|r| r.identity == kims.1).count() >= 2,
        "{removals:?}"
    );
    assert!(
        livekit.violations().is_empty(),
        "{:?}",
        livekit.violations()
    );

    // LiveKit's own verifier reads the admin token: this room, admin only.
    if let Some(verified) = livekit_verifies(&removals[0].token).await? {
        assert_eq!(verified["room"], alices.0.as_str());
        assert_eq!(verified["room_admin"], true);
        assert!(verified["room_join"].is_null() || verified["room_join"] == false);
    }
    Ok(())
}

/// Runs LiveKit's own end-to-end encryption worker (npm `livekit-client`,
/// which scripts/test installs) in Node over VP8 frames: `mode` is
/// `encrypt` or `decrypt`, `identity` the sending participant, `keys` the
/// key provider's keys, `current` the index to send with. The frames out,
/// `None` for those that did not decrypt; `None` overall when the worker is
/// not installed (outside CI).
async fn livekit_frames(
    mode: &str,
    identity: &str,
    keys: &[hearth_client::LiveKitKey],
    current: u8,
    frames: &[Vec<u8>],
) -> Result<Option<Vec<Option<Vec<u8>>>>> {
    let Ok(worker) = std::env::var("LIVEKIT_E2EE_WORKER") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            bail!("CI=true but LIVEKIT_E2EE_WORKER is not set (scripts/test installs it)");
        }
        eprintln!("SKIPPED LiveKit's frame encryption: run scripts/test, which installs it");
        return Ok(None);
    };
    let spec = serde_json::json!({
        "identity": identity,
        "keys": keys.iter().map(|k| serde_json::json!({
            "index": k.key_index, "passphrase": k.passphrase,
        })).collect::<Vec<_>>(),
        "current": current,
        "frames": frames.iter().map(|f| hex(f)).collect::<Vec<_>>(),
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("livekit/frames.mjs");
    let output = tokio::process::Command::new("node")
        .arg(script)
        .arg(worker)
        .arg(mode)
        .arg(spec.to_string())
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "LiveKit's worker: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let out: Value = serde_json::from_slice(&output.stdout)?;
    let unhex = |text: &str| -> Result<Vec<u8>> {
        (0..text.len())
            .step_by(2)
            .map(|i| Ok(u8::from_str_radix(&text[i..i + 2], 16)?))
            .collect()
    };
    out["frames"]
        .as_array()
        .context("frames")?
        .iter()
        .map(|f| f.as_str().map(unhex).transpose())
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

async fn livekits_own_frame_encryption_runs_on_keys_from_the_circle(db: Db) -> Result<()> {
    let app = with_video(db).await?;
    let (_dirs, clients, circle, calls) = three_in_a_call(&app).await?;
    let ([alice, sam, kim], [a, s, k]) = (&clients[..], &calls[..]) else {
        bail!("three clients")
    };
    // Two VP8 frames (a key frame and a delta) from Alice's camera.
    let frames = vec![
        b"\x10\x02\x00\x9d\x01\x2a alice's key frame".to_vec(),
        b"\x31\x00\x00 alice's delta frame".to_vec(),
    ];
    // Alice's app gives LiveKit her own key; Sam's and Kim's derive hers from
    // the identity the room shows them, with no help from the server.
    let alices = a.keys.livekit_keys(&a.identity)?;
    assert_eq!(
        alices,
        s.keys.livekit_keys(&a.identity)?,
        "one key, derived apart"
    );
    assert_ne!(
        alices,
        a.keys.livekit_keys(&s.identity)?,
        "a key per participant"
    );
    assert_eq!(u64::from(alices[0].key_index), a.keys.epoch()? % 16);
    let Some(sent) = livekit_frames(
        "encrypt",
        &a.identity,
        &alices,
        alices[0].key_index,
        &frames,
    )
    .await?
    else {
        return Ok(());
    };
    let sent: Vec<Vec<u8>> = sent
        .into_iter()
        .collect::<Option<_>>()
        .context("all encrypted")?;
    for (frame, plain) in sent.iter().zip(&frames) {
        assert_ne!(frame, plain);
        assert_eq!(
            frame.last(),
            Some(&alices[0].key_index),
            "LiveKit's trailer names the index"
        );
    }
    let sams_view = s.keys.livekit_keys(&a.identity)?;
    let read = livekit_frames(
        "decrypt",
        &a.identity,
        &sams_view,
        sams_view[0].key_index,
        &sent,
    )
    .await?;
    assert_eq!(
        read,
        Some(frames.iter().cloned().map(Some).collect()),
        "Sam sees Alice"
    );

    // Kim is removed. Alice's next frames are under the new epoch's key and
    // index; Sam follows (and still plays frames in flight), Kim cannot.
    let kim_id = kim.device_id().await?.context("registered")?;
    alice.remove_devices(&circle, &[kim_id]).await?;
    sam.sync(&circle).await?;
    let alices = a.keys.livekit_keys(&a.identity)?;
    assert_eq!(alices.len(), 2, "the new epoch's key, then the old one's");
    assert_ne!(alices[0].key_index, alices[1].key_index);
    let after = livekit_frames(
        "encrypt",
        &a.identity,
        &alices,
        alices[0].key_index,
        &frames,
    )
    .await?
    .context("installed")?;
    let after: Vec<Vec<u8>> = after
        .into_iter()
        .collect::<Option<_>>()
        .context("all encrypted")?;
    let sams_view = s.keys.livekit_keys(&a.identity)?;
    for (batch, what) in [(&after, "the new frames"), (&sent, "those still in flight")] {
        let read = livekit_frames(
            "decrypt",
            &a.identity,
            &sams_view,
            sams_view[0].key_index,
            batch,
        )
        .await?
        .context("installed")?;
        let expected: Vec<Option<Vec<u8>>> = frames.iter().cloned().map(Some).collect();
        assert_eq!(read, expected, "Sam reads {what}");
    }
    let kims_view = k.keys.livekit_keys(&a.identity)?;
    let read = livekit_frames(
        "decrypt",
        &a.identity,
        &kims_view,
        kims_view[0].key_index,
        &after,
    )
    .await?
    .context("installed")?;
    assert_eq!(read, vec![None, None], "Kim, removed, reads nothing new");
    Ok(())
}
