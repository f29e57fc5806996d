//! What the server checks of the MLS it relays without decrypting any of it,
//! told as what a client built on another MLS library would run into: every
//! blob is the `MLSMessage` its field says, for this circle, at the declared
//! epoch; members commit privately; application messages are padded; claims
//! name a ciphersuite and need a reason.

use anyhow::Result;
use hearth_protocol::circles::{LogPage, SendMessage};
use hearth_protocol::key_packages::{ClaimedKeyPackages, KeyPackageCount, UploadedKeyPackages};
use hearth_protocol::mls as profile;
use hearth_protocol::{Base64Bytes, CircleId, ErrorCode, framing};
use hearth_tests::mls::{Member, circle_with};
use hearth_tests::{
    Db, TestApp, expect_error, on_both_databases, opaque_commit, opaque_message, rand_bytes,
};
use openmls::prelude::tls_codec::Serialize as _;
use openmls::prelude::*;
use serde_json::json;

on_both_databases!(
    a_member_who_commits_in_the_clear_is_refused_and_the_circle_does_not_move,
    blobs_that_do_not_match_their_request_are_refused_and_nothing_is_kept,
    a_reaction_and_a_paragraph_look_alike_on_the_server,
    only_the_facilitator_they_asked_may_claim_a_strangers_key_packages,
    a_claim_names_its_suite_and_takes_nothing_of_another,
    key_packages_upload_bare_or_framed_and_are_handed_out_framed,
    every_id_has_one_spelling_and_circle_ids_cannot_be_guessed,
);

fn messages(circle: &CircleId) -> String {
    format!("/v1/circles/{circle}/messages")
}

fn send_body(epoch: u64, ciphertext: Vec<u8>) -> SendMessage {
    SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch,
        ciphertext: Base64Bytes::from(ciphertext),
    }
}

/// A claim by `claimer` that must succeed.
async fn claim(
    app: &TestApp,
    claimer: &Member,
    body: serde_json::Value,
) -> Result<ClaimedKeyPackages> {
    let answer = app
        .post_json("/v1/key-packages/claim", claimer.token(), &body)
        .await?;
    anyhow::ensure!(answer.status() == 200, "claim: {}", answer.status());
    Ok(answer.json().await?)
}

async fn log(app: &TestApp, member: &Member, circle: &CircleId) -> Result<LogPage> {
    Ok(app
        .get(&messages(circle), member.token())
        .await?
        .json()
        .await?)
}

async fn a_member_who_commits_in_the_clear_is_refused_and_the_circle_does_not_move(
    db: Db,
) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, mut members, circle) = circle_with(&app, 1).await?;
    let sam = &mut members[0];

    // Sam's client is set to send handshakes as PublicMessages, which would
    // show the server who is added and removed.
    let plaintext = MlsGroupJoinConfig::builder()
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .max_past_epochs(profile::MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .build();
    let storage = sam.provider.storage();
    sam.group
        .as_mut()
        .map(|g| g.set_configuration(storage, &plaintext))
        .transpose()?;
    let public = sam.update_commit()?;
    assert!(matches!(
        framing::read(public.commit.as_slice()),
        Ok(framing::Header::Public {
            sender: framing::SenderKind::Member(_),
            ..
        })
    ));
    expect_error(
        sam.post_commit(&app, &circle, &public).await?,
        422,
        ErrorCode::PublicCommit,
    )
    .await?;
    sam.drop_own_commit()?;
    let storage = sam.provider.storage();
    sam.group
        .as_mut()
        .map(|g| g.set_configuration(storage, &profile::join_config()))
        .transpose()?;

    // Nothing moved: the facilitator's next message reaches Sam at epoch 1.
    assert_eq!(
        facilitator
            .send(&app, &circle, "still here")
            .await?
            .status(),
        201
    );
    let (plain, _) = sam.sync(&app, &circle, 1).await?;
    assert_eq!(plain, vec![b"still here".to_vec()]);
    // The same change made privately goes through.
    let private = sam.update_commit()?;
    sam.commit_accepted(&app, &circle, &private).await?;
    // And an external commit, the one public commit there is, still rejoins.
    let rejoin = sam.rejoin_commit(&app, &circle).await?;
    assert!(matches!(
        framing::read(rejoin.commit.as_slice()),
        Ok(framing::Header::Public {
            sender: framing::SenderKind::NewMemberCommit,
            ..
        })
    ));
    sam.commit_accepted(&app, &circle, &rejoin).await?;
    Ok(())
}

async fn blobs_that_do_not_match_their_request_are_refused_and_nothing_is_kept(
    db: Db,
) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, _members, circle) = circle_with(&app, 1).await?;
    let mut elsewhere = Member::sign_up(&app).await?;
    let elsewhere_circle = elsewhere.create_circle(&app).await?;
    let before = log(&app, &facilitator, &circle).await?.entries.len();

    let real = facilitator.encrypt(b"a real message")?.into_inner();
    let mut wrong_epoch = real.clone();
    // The epoch follows the version, wire format and the group id.
    let epoch_at = 4 + 1 + circle.as_bytes().len();
    wrong_epoch[epoch_at + 7] ^= 1;
    let mut unpadded = opaque_message(&circle, 1, b"x");
    unpadded.truncate(unpadded.len() - 24);
    let refusals: [(&str, Vec<u8>, u64, ErrorCode); 7] = [
        (
            "random bytes",
            rand_bytes::<32>().to_vec(),
            1,
            ErrorCode::MlsFraming,
        ),
        (
            "another epoch than declared",
            real.clone(),
            2,
            ErrorCode::MlsFraming,
        ),
        (
            "a header for another epoch",
            wrong_epoch,
            1,
            ErrorCode::MlsFraming,
        ),
        (
            "another circle's message",
            opaque_message(&elsewhere_circle, 1, b"lost"),
            1,
            ErrorCode::MlsFraming,
        ),
        (
            "a commit as a message",
            opaque_commit(&circle, 1),
            1,
            ErrorCode::MlsFraming,
        ),
        (
            "an unpadded message",
            unpadded_frame(&circle),
            1,
            ErrorCode::UnpaddedMessage,
        ),
        ("a message cut short", unpadded, 1, ErrorCode::MlsFraming),
    ];
    for (what, bytes, epoch, code) in refusals {
        let answer = app
            .post_json(
                &messages(&circle),
                facilitator.token(),
                &send_body(epoch, bytes),
            )
            .await?;
        let body = expect_error(answer, 422, code).await?;
        assert!(!body.message.is_empty(), "{what}: says what was expected");
    }

    // Commit bundles: the commit must be a commit, the Welcome a Welcome,
    // the GroupInfo this circle's at the next epoch.
    let mut sam2 = Member::sign_up(&app).await?;
    sam2.publish_key_packages(&app, 2).await?;
    let add = facilitator.add_commit(&app, &[&sam2]).await?;
    let mut as_message = add.clone();
    as_message.commit = Base64Bytes::from(opaque_message(&circle, 1, b"not a commit"));
    let mut welcome_is_commit = add.clone();
    welcome_is_commit.welcome = Some(add.commit.clone());
    let mut foreign_info = add.clone();
    foreign_info.group_info = elsewhere.update_commit()?.group_info;
    assert!(foreign_info.group_info.is_some());
    for bundle in [as_message, welcome_is_commit, foreign_info] {
        expect_error(
            facilitator.post_commit(&app, &circle, &bundle).await?,
            422,
            ErrorCode::MlsFraming,
        )
        .await?;
    }
    elsewhere.drop_own_commit()?;
    // The right bundle still goes through: nothing above was applied.
    facilitator.commit_accepted(&app, &circle, &add).await?;
    sam2.join(&app).await?;
    let after = log(&app, &facilitator, &circle).await?.entries.len();
    assert_eq!(after, before + 1, "only the accepted commit was appended");
    Ok(())
}

/// A well-framed application message whose ciphertext is 1000 bytes: the
/// padding rule allows 1024.
fn unpadded_frame(circle: &CircleId) -> Vec<u8> {
    framing::private_message(
        circle.as_bytes(),
        1,
        framing::ContentType::Application,
        &[7; 28],
        &[9; 1000],
    )
}

async fn a_reaction_and_a_paragraph_look_alike_on_the_server(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, members, circle) = circle_with(&app, 1).await?;
    let paragraph = "I wanted to say how much last week meant to me. ".repeat(14);
    assert!(paragraph.len() > 600);
    for text in ["👍", paragraph.as_str(), &"long letter ".repeat(300)] {
        assert_eq!(facilitator.send(&app, &circle, text).await?.status(), 201);
    }
    let page = log(&app, &members[0], &circle).await?;
    let sizes: Vec<usize> = page
        .entries
        .iter()
        .map(|e| framing::private_ciphertext(e.ciphertext.as_slice()).map_or(0, <[u8]>::len))
        .collect();
    assert_eq!(
        sizes,
        [1024, 1024, 4096],
        "a reaction and a paragraph share the smallest size; a letter of 3,600 bytes takes the next power of two that holds it"
    );
    Ok(())
}

async fn only_the_facilitator_they_asked_may_claim_a_strangers_key_packages(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, members, _circle) = circle_with(&app, 1).await?;
    let member = &members[0];
    let sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 3).await?;
    let body = json!({ "device_ids": [sam.device.device_id] });
    let count = async || -> Result<KeyPackageCount> {
        Ok(app
            .get("/v1/key-packages/count", sam.token())
            .await?
            .json()
            .await?)
    };

    // Nobody asked for Sam: neither the facilitator nor anyone else may
    // drain his pool.
    for claimer in [&facilitator, member] {
        expect_error(
            app.post_json("/v1/key-packages/claim", claimer.token(), &body)
                .await?,
            403,
            ErrorCode::ClaimNotAllowed,
        )
        .await?;
    }
    assert_eq!(count().await?.available, 3, "nothing was consumed");

    // Sam asks to join: the facilitator may claim, a member still may not.
    facilitator.invite(&app, &[&sam]).await?;
    expect_error(
        app.post_json("/v1/key-packages/claim", member.token(), &body)
            .await?,
        403,
        ErrorCode::ClaimNotAllowed,
    )
    .await?;
    let claimed = claim(&app, &facilitator, body.clone()).await?;
    assert_eq!(claimed.key_packages.len(), 1);
    assert_eq!(count().await?.available, 2);
    // The approval uses the request up; Sam's pool is his again.
    let add = facilitator.add_commit(&app, &[&sam]).await?;
    assert!(add.join_request_id.is_some());
    let circle = facilitator.circle_id()?;
    facilitator.commit_accepted(&app, &circle, &add).await?;
    expect_error(
        app.post_json("/v1/key-packages/claim", facilitator.token(), &body)
            .await?,
        403,
        ErrorCode::ClaimNotAllowed,
    )
    .await?;
    Ok(())
}

/// A KeyPackage of Sam's in the ChaCha20-Poly1305 suite.
fn chacha_key_package(sam: &Member) -> Result<Vec<u8>> {
    let bundle = KeyPackage::builder()
        .leaf_node_capabilities(profile::leaf_capabilities())
        .build(
            Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
            &sam.provider,
            &sam.signer,
            sam.credential(),
        )?;
    Ok(bundle.key_package().tls_serialize_detached()?)
}

async fn a_claim_names_its_suite_and_takes_nothing_of_another(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let mut facilitator = Member::sign_up(&app).await?;
    facilitator.create_circle(&app).await?;
    let sam = Member::sign_up(&app).await?;
    let upload = json!({ "key_packages": [Base64Bytes::from(chacha_key_package(&sam)?)] });
    let uploaded: UploadedKeyPackages = app
        .post_json("/v1/key-packages", sam.token(), &upload)
        .await?
        .json()
        .await?;
    assert_eq!(uploaded.accepted, 1, "{:?}", uploaded.rejected);
    facilitator.invite(&app, &[&sam]).await?;

    // The circle is AES-128-GCM (suite 1, the default): Sam has none.
    let claimed = claim(
        &app,
        &facilitator,
        json!({ "device_ids": [sam.device.device_id] }),
    )
    .await?;
    assert!(claimed.key_packages.is_empty());
    assert_eq!(claimed.unavailable, vec![sam.device.device_id]);
    let count: KeyPackageCount = app
        .get("/v1/key-packages/count", sam.token())
        .await?
        .json()
        .await?;
    assert_eq!(
        count.available, 1,
        "and his ChaCha20 KeyPackage is still there"
    );
    // A ChaCha20 circle asks for suite 3 and gets it.
    let claimed = claim(
        &app,
        &facilitator,
        json!({ "device_ids": [sam.device.device_id], "cipher_suite": 3 }),
    )
    .await?;
    assert_eq!(claimed.key_packages.len(), 1);
    let read = profile::read_key_package(
        sam.provider.crypto(),
        claimed.key_packages[0].key_package.as_slice(),
    )?;
    assert_eq!(
        read.ciphersuite(),
        Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
    );
    Ok(())
}

async fn key_packages_upload_bare_or_framed_and_are_handed_out_framed(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let mut facilitator = Member::sign_up(&app).await?;
    facilitator.create_circle(&app).await?;
    let sam = Member::sign_up(&app).await?;
    let bare = sam.key_package(None, false)?;
    let framed = profile::frame_key_package(&sam.key_package(None, false)?);
    let upload = json!({
        "key_packages": [Base64Bytes::from(bare.clone()), Base64Bytes::from(framed.clone())],
        "last_resort": Base64Bytes::from(opaque_commit(&CircleId::from_bytes(vec![1; 16])?, 0)),
    });
    let uploaded: UploadedKeyPackages = app
        .post_json("/v1/key-packages", sam.token(), &upload)
        .await?
        .json()
        .await?;
    assert_eq!(uploaded.accepted, 2);
    assert_eq!(
        uploaded.rejected.len(),
        1,
        "an MLSMessage of another kind is no KeyPackage"
    );
    assert_eq!(
        uploaded.rejected[0].reason,
        hearth_protocol::key_packages::KeyPackageRejection::NotAKeyPackage
    );
    facilitator.invite(&app, &[&sam]).await?;
    let mut handed_out = Vec::new();
    for _ in 0..2 {
        let claimed = claim(
            &app,
            &facilitator,
            json!({ "device_ids": [sam.device.device_id] }),
        )
        .await?;
        handed_out.push(claimed.key_packages[0].key_package.clone().into_inner());
    }
    assert_eq!(
        handed_out,
        [profile::frame_key_package(&bare), framed],
        "both handed out as MLSMessages, in upload order"
    );
    Ok(())
}

async fn every_id_has_one_spelling_and_circle_ids_cannot_be_guessed(db: Db) -> Result<()> {
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, _members, circle) = circle_with(&app, 1).await?;
    let invite: hearth_protocol::circles::Invite = app
        .post_json(
            &format!("/v1/circles/{circle}/invites"),
            facilitator.token(),
            &json!({}),
        )
        .await?
        .json()
        .await?;
    let upper = invite.invite_id.to_string().to_uppercase();
    // In a path: the upper-case spelling names nothing (a path that does
    // not parse is no resource).
    expect_error(
        app.delete(
            &format!("/v1/circles/{circle}/invites/{upper}"),
            facilitator.token(),
        )
        .await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    expect_error(
        app.delete(&format!("/v1/welcomes/{upper}"), facilitator.token())
            .await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    // In a body: a message id in capitals is refused, not stored under
    // another spelling.
    let ciphertext = facilitator.encrypt(b"spelled once")?;
    let body = json!({
        "message_id": uuid::Uuid::new_v4().to_string().to_uppercase(),
        "epoch": facilitator.epoch(),
        "ciphertext": ciphertext,
    });
    expect_error(
        app.post_json(&messages(&circle), facilitator.token(), &body)
            .await?,
        400,
        ErrorCode::BadRequest,
    )
    .await?;
    // The lower-case one works.
    let revoked = app
        .delete(
            &format!("/v1/circles/{circle}/invites/{}", invite.invite_id),
            facilitator.token(),
        )
        .await?;
    assert_eq!(revoked.status(), 204);

    // A circle id of 8 bytes could be found by guessing: 16 is the least.
    for (bytes, status) in [(8, 400), (15, 400), (16, 201)] {
        let id = Base64Bytes::from(rand_bytes::<16>()[..bytes].to_vec());
        let answer = app
            .post_json(
                "/v1/circles",
                facilitator.token(),
                &json!({ "circle_id": id }),
            )
            .await?;
        assert_eq!(answer.status(), status, "{bytes} bytes");
    }
    Ok(())
}
