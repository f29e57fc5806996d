//! The delivery service with real MLS: KeyPackages, circles, commit bundles,
//! the ordered log, acknowledgement and retention.

use anyhow::{Context as _, Result, ensure};
use futures_util::future::join_all;
use hearth_protocol::circles::{
    Accepted, Circle, EntryKind, Invite, JoinRequestCreated, LogPage, SendMessage, WelcomeList,
};
use hearth_protocol::key_packages::{
    ClaimedKeyPackages, KeyPackageCount, KeyPackageRejection, UploadedKeyPackages,
};
use hearth_protocol::sync::SyncResponse;
use hearth_protocol::{Base64Bytes, CircleId, DeviceId, ErrorBody, ErrorCode};
use hearth_tests::mls::{Member, circle_with};
use hearth_tests::{Db, TestApp, expect_error, on_both_databases, rand_bytes};
use openmls::prelude::{BasicCredential, CredentialWithKey, Lifetime, SignatureScheme};
use openmls_basic_credential::SignatureKeyPair;
use serde_json::json;
use std::collections::HashSet;

on_both_databases!(
    a_facilitator_enrolls_three_members_and_all_read_one_order,
    of_racing_commits_exactly_one_wins_a_hundred_times_over,
    a_welcome_waits_only_for_the_winning_commits_added_devices,
    concurrent_claims_never_hand_out_a_key_package_twice,
    bad_key_packages_are_refused_each_with_its_reason,
    a_resent_message_keeps_one_row_and_one_sequence_number,
    a_body_with_a_key_twice_is_refused_and_changes_nothing,
    concurrent_senders_leave_a_gap_free_log_everyone_reads_alike,
    a_removed_member_reads_and_sends_nothing_and_strangers_see_404,
    acknowledged_and_expired_entries_leave_the_database,
    limits_and_rules_answer_with_their_codes,
    an_invite_becomes_a_join_request_that_one_commit_approves,
    a_member_whose_state_broke_rejoins_by_external_commit,
    key_package_claims_are_rate_limited,
    a_deleted_account_leaves_no_trace_in_any_circle,
    one_sync_reads_every_circle_and_its_cursors_acknowledge,
);

const LOG: &str = "/messages";

fn path(circle: &CircleId, tail: &str) -> String {
    format!("/v1/circles/{circle}{tail}")
}

async fn a_facilitator_enrolls_three_members_and_all_read_one_order(app: TestApp) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 3).await?;

    let seen: Circle = app
        .get(&path(&circle, ""), facilitator.token())
        .await?
        .json()
        .await?;
    assert_eq!(seen.epoch, 1);
    assert_eq!(seen.roster.len(), 4);
    assert_eq!(seen.max_members, 12);

    // Everyone speaks once; the facilitator twice.
    let mut sent = Vec::new();
    for (i, member) in members.iter_mut().enumerate() {
        let text = format!("hello from member {i}");
        assert_eq!(member.send(&app, &circle, &text).await?.status(), 201);
        sent.push(text);
    }
    for text in ["welcome, all", "see you thursday"] {
        assert_eq!(facilitator.send(&app, &circle, text).await?.status(), 201);
        sent.push(text.to_owned());
    }

    // Each member reads the log after the commit that added them; the
    // facilitator from the start. Everyone decrypts the same sequence.
    let joined_at = 1;
    let (theirs, _) = facilitator.sync(&app, &circle, joined_at).await?;
    let theirs: Vec<String> = theirs
        .into_iter()
        .map(|p| String::from_utf8(p).unwrap_or_default())
        .collect();
    // The facilitator cannot decrypt its own messages (MLS), so it sees the others'.
    assert_eq!(theirs, sent[..3]);
    for (i, member) in members.iter_mut().enumerate() {
        let (plain, cursor) = member.sync(&app, &circle, 0).await?;
        let plain: Vec<String> = plain
            .into_iter()
            .map(|p| String::from_utf8(p).unwrap_or_default())
            .collect();
        // MLS does not let a sender decrypt its own message: everyone else's, in order.
        let expected: Vec<String> = sent
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| s.clone())
            .collect();
        assert_eq!(plain, expected);
        assert_eq!(cursor, 6, "the commit and five messages");
    }
    let list: hearth_protocol::circles::CircleList = app
        .get("/v1/circles", members[0].token())
        .await?
        .json()
        .await?;
    assert_eq!(list.circles.len(), 1);
    assert_eq!(list.circles[0].circle_id, circle);
    Ok(())
}

async fn of_racing_commits_exactly_one_wins_a_hundred_times_over(app: TestApp) -> Result<()> {
    let (facilitator, members, circle) = circle_with(&app, 2).await?;
    let mut all: Vec<Member> = std::iter::once(facilitator).chain(members).collect();
    let mut cursors = vec![1u64; all.len()];
    let start = all[0].epoch();
    for round in 0..100u64 {
        let epoch = start + round;
        let bundles = all
            .iter_mut()
            .map(Member::update_commit)
            .collect::<Result<Vec<_>>>()?;
        let posts = all
            .iter()
            .zip(&bundles)
            .map(|(m, b)| m.post_commit(&app, &circle, b));
        let responses = join_all(posts).await;
        let mut winner = None;
        for (i, response) in responses.into_iter().enumerate() {
            let response = response?;
            match response.status().as_u16() {
                201 => {
                    ensure!(winner.is_none(), "round {round}: two commits won");
                    winner = Some(i);
                }
                409 => {
                    let body: ErrorBody = response.json().await?;
                    ensure!(body.code == ErrorCode::StaleEpoch);
                    ensure!(
                        body.current_epoch == Some(epoch + 1),
                        "round {round}: {body:?}"
                    );
                }
                other => anyhow::bail!("round {round}: unexpected {other}"),
            }
        }
        let winner = winner.ok_or_else(|| anyhow::anyhow!("round {round}: nobody won"))?;
        for (i, member) in all.iter_mut().enumerate() {
            if i == winner {
                member.merge_own_commit()?;
                cursors[i] += 1;
            } else {
                member.drop_own_commit()?;
                let (_, cursor) = member.sync(&app, &circle, cursors[i]).await?;
                cursors[i] = cursor;
            }
            ensure!(
                member.epoch() == epoch + 1,
                "round {round}: member {i} at {}",
                member.epoch()
            );
        }
    }
    // The log holds exactly one commit per epoch.
    let page: LogPage = app
        .get(
            &format!("{}?after=1&limit=100", path(&circle, LOG)),
            all[0].token(),
        )
        .await?
        .json()
        .await?;
    let epochs: Vec<u64> = page
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Commit)
        .map(|e| e.epoch)
        .collect();
    assert_eq!(epochs, (start..start + 100).collect::<Vec<_>>());
    let authenticators: HashSet<Vec<u8>> = all
        .iter()
        .map(|m| {
            m.group
                .as_ref()
                .map(|g| g.epoch_authenticator().as_slice().to_vec())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        authenticators.len(),
        1,
        "everyone agrees on the epoch authenticator"
    );
    Ok(())
}

async fn a_welcome_waits_only_for_the_winning_commits_added_devices(app: TestApp) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 1).await?;
    let mut sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 3).await?;

    // The member's self-update and the facilitator's add of Sam race; the
    // member's lands first.
    let update = members[0].update_commit()?;
    let add = facilitator.add_commit(&app, &[&sam]).await?;
    members[0].commit_accepted(&app, &circle, &update).await?;
    let refused = facilitator.post_commit(&app, &circle, &add).await?;
    expect_error(refused, 409, ErrorCode::StaleEpoch).await?;
    let waiting: WelcomeList = app.get("/v1/welcomes", sam.token()).await?.json().await?;
    assert!(
        waiting.welcomes.is_empty(),
        "the losing commit's Welcome was not queued"
    );
    let not_yet = app.get(&path(&circle, ""), sam.token()).await?;
    expect_error(not_yet, 404, ErrorCode::NotFound).await?;

    // The facilitator catches up and adds Sam again: one Welcome, for Sam.
    facilitator.drop_own_commit()?;
    facilitator.sync(&app, &circle, 1).await?;
    let add = facilitator.add_commit(&app, &[&sam]).await?;
    let accepted = facilitator.commit_accepted(&app, &circle, &add).await?;
    let waiting: WelcomeList = app.get("/v1/welcomes", sam.token()).await?.json().await?;
    assert_eq!(waiting.welcomes.len(), 1);
    assert_eq!(waiting.welcomes[0].seq, accepted.seq);
    assert_eq!(waiting.welcomes[0].epoch, accepted.epoch);
    let nothing: WelcomeList = app
        .get("/v1/welcomes", members[0].token())
        .await?
        .json()
        .await?;
    assert!(nothing.welcomes.is_empty());
    sam.join(&app).await?;
    assert_eq!(sam.epoch(), accepted.epoch);
    Ok(())
}

async fn concurrent_claims_never_hand_out_a_key_package_twice(app: TestApp) -> Result<()> {
    let sam = Member::sign_up(&app).await?;
    let mut claimer = Member::sign_up(&app).await?;
    claimer.create_circle(&app).await?;
    claimer.invite(&app, &[&sam]).await?;
    sam.publish_key_packages(&app, 60).await?;
    let count: KeyPackageCount = app
        .get("/v1/key-packages/count", sam.token())
        .await?
        .json()
        .await?;
    assert_eq!(
        count,
        KeyPackageCount {
            available: 60,
            last_resort: true
        }
    );

    let body = json!({ "device_ids": [sam.device.device_id] });
    let claims = (0..100).map(|_| app.post_json("/v1/key-packages/claim", claimer.token(), &body));
    let mut regular = Vec::new();
    let mut last_resort = Vec::new();
    for response in join_all(claims).await {
        let response = response?;
        ensure!(
            response.status() == 200,
            "a claim failed: {} {}",
            response.status(),
            response.text().await?
        );
        let claimed: ClaimedKeyPackages = response.json().await?;
        assert_eq!(
            claimed.key_packages.len(),
            1,
            "the last resort answers when the pool is empty"
        );
        let kp = &claimed.key_packages[0];
        if kp.last_resort {
            last_resort.push(kp.key_package.clone());
        } else {
            regular.push(kp.key_package.clone());
        }
    }
    assert_eq!(regular.len(), 60);
    assert_eq!(
        regular.iter().collect::<HashSet<_>>().len(),
        60,
        "no KeyPackage handed out twice"
    );
    assert_eq!(last_resort.len(), 40);
    assert_eq!(
        last_resort.iter().collect::<HashSet<_>>().len(),
        1,
        "the one last resort, not consumed"
    );
    let count: KeyPackageCount = app
        .get("/v1/key-packages/count", sam.token())
        .await?
        .json()
        .await?;
    assert_eq!(
        count,
        KeyPackageCount {
            available: 0,
            last_resort: true
        }
    );

    // A device with nothing published is reported as unavailable.
    let empty = Member::sign_up(&app).await?;
    claimer.invite(&app, &[&empty]).await?;
    let claimed: ClaimedKeyPackages = app
        .post_json(
            "/v1/key-packages/claim",
            claimer.token(),
            &json!({ "device_ids": [empty.device.device_id] }),
        )
        .await?
        .json()
        .await?;
    assert!(claimed.key_packages.is_empty());
    assert_eq!(claimed.unavailable, vec![empty.device.device_id]);
    Ok(())
}

async fn bad_key_packages_are_refused_each_with_its_reason(app: TestApp) -> Result<()> {
    let sam = Member::sign_up(&app).await?;
    let alex = Member::sign_up(&app).await?;
    let now = u64::try_from(hearth_server::now())?;
    let good = sam.key_package(None, false)?;
    let mut forged = sam.key_package(None, false)?;
    if let Some(last) = forged.last_mut() {
        *last ^= 0x01;
    }
    let stranger = SignatureKeyPair::new(SignatureScheme::ED25519)?;
    let foreign_key = sam.key_package_as(
        &stranger,
        CredentialWithKey {
            credential: BasicCredential::new(sam.device.device_id.as_bytes().to_vec()).into(),
            signature_key: stranger.public().into(),
        },
        None,
        false,
    )?;
    let foreign_credential = sam.key_package_as(
        &sam.signer,
        CredentialWithKey {
            credential: BasicCredential::new(alex.device.device_id.as_bytes().to_vec()).into(),
            signature_key: sam.signer.public().into(),
        },
        None,
        false,
    )?;
    let expired = sam.key_package(Some(Lifetime::init(now - 7200, now - 3600)), false)?;
    let early = sam.key_package(Some(Lifetime::init(now + 3600, now + 7200)), false)?;
    let overlong = sam.key_package(Some(Lifetime::init(now - 60, now + 90 * 24 * 3600)), false)?;
    let alex_own = alex.key_package(None, false)?;
    let marked = sam.key_package(None, true)?;
    let upload = json!({
        "key_packages": [
            Base64Bytes::from(good.clone()),
            Base64Bytes::from(rand_bytes::<64>().to_vec()),
            Base64Bytes::from(forged),
            Base64Bytes::from(foreign_key),
            Base64Bytes::from(foreign_credential),
            Base64Bytes::from(expired),
            Base64Bytes::from(early),
            Base64Bytes::from(overlong),
            Base64Bytes::from(alex_own),
            Base64Bytes::from(marked),
            Base64Bytes::from(good),
        ],
        "last_resort": Base64Bytes::from(sam.key_package(None, false)?),
    });
    let response = app
        .post_json("/v1/key-packages", sam.token(), &upload)
        .await?;
    assert_eq!(response.status(), 200);
    let result: UploadedKeyPackages = response.json().await?;
    assert_eq!(result.accepted, 1, "{result:?}");
    let reasons: Vec<(String, KeyPackageRejection)> = result
        .rejected
        .into_iter()
        .map(|r| (r.item, r.reason))
        .collect();
    use KeyPackageRejection::*;
    let expected = [
        ("key_packages[1]", NotAKeyPackage),
        ("key_packages[2]", BadSignature),
        ("key_packages[3]", ForeignSignatureKey),
        ("key_packages[4]", ForeignCredential),
        ("key_packages[5]", Expired),
        ("key_packages[6]", NotYetValid),
        ("key_packages[7]", LifetimeTooLong),
        ("key_packages[8]", ForeignSignatureKey),
        ("key_packages[9]", LastResortMismatch),
        ("key_packages[10]", Duplicate),
        ("last_resort", LastResortMismatch),
    ];
    for (item, reason) in expected {
        assert!(
            reasons.contains(&(item.to_owned(), reason)),
            "{item}: {reason:?} in {reasons:?}"
        );
    }
    assert_eq!(
        result.pool,
        KeyPackageCount {
            available: 1,
            last_resort: false
        }
    );

    // Too many in one upload.
    let many: Vec<Base64Bytes> = (0..101).map(|_| Base64Bytes::from(vec![0u8; 4])).collect();
    let response = app
        .post_json(
            "/v1/key-packages",
            sam.token(),
            &json!({ "key_packages": many }),
        )
        .await?;
    expect_error(response, 422, ErrorCode::InvalidRequest).await?;
    Ok(())
}

fn message(epoch: u64, ciphertext: &Base64Bytes, id: uuid::Uuid) -> SendMessage {
    SendMessage {
        message_id: id,
        epoch,
        ciphertext: ciphertext.clone(),
    }
}

async fn a_body_with_a_key_twice_is_refused_and_changes_nothing(app: TestApp) -> Result<()> {
    let (mut facilitator, members, circle) = circle_with(&app, 1).await?;
    let url = path(&circle, LOG);
    let (first, second) = (
        facilitator.encrypt(b"what a proxy would read")?,
        facilitator.encrypt(b"what the server would store")?,
    );
    let id = uuid::Uuid::new_v4();
    let epoch = facilitator.epoch();
    // Two ciphertexts under one id: a reader keeping the first key and one
    // keeping the last would disagree on what was sent.
    let twice = format!(
        r#"{{"message_id":"{id}","epoch":{epoch},"ciphertext":{},"ciphertext":{}}}"#,
        serde_json::to_string(&first)?,
        serde_json::to_string(&second)?
    );
    let refused = expect_error(
        app.post_raw_json(&url, facilitator.token(), &twice).await?,
        400,
        ErrorCode::BadRequest,
    )
    .await?;
    assert!(refused.message.contains("twice"), "{}", refused.message);
    // Nothing was kept under that id: the message goes in once, cleanly.
    let once = app
        .post_json(&url, facilitator.token(), &message(epoch, &first, id))
        .await?;
    assert_eq!(once.status(), 201, "the id was still free");

    // An acknowledgement naming two positions.
    let ack = path(&circle, "/ack");
    expect_error(
        app.post_raw_json(&ack, members[0].token(), r#"{"seq":1,"seq":2}"#)
            .await?,
        400,
        ErrorCode::BadRequest,
    )
    .await?;
    // The same key twice at another depth, and an ordinary body still passes.
    expect_error(
        app.post_raw_json(&ack, members[0].token(), r#"{"seq":1,"x":{"a":1,"a":2}}"#)
            .await?,
        400,
        ErrorCode::BadRequest,
    )
    .await?;
    let fine = app
        .post_raw_json(&ack, members[0].token(), r#"{"seq":1}"#)
        .await?;
    assert_eq!(fine.status(), 204);
    Ok(())
}

async fn a_resent_message_keeps_one_row_and_one_sequence_number(app: TestApp) -> Result<()> {
    let (mut facilitator, _, circle) = circle_with(&app, 1).await?;
    let url = path(&circle, LOG);
    let ciphertext = facilitator.encrypt(b"once only")?;
    let id = uuid::Uuid::new_v4();
    let body = message(facilitator.epoch(), &ciphertext, id);

    let first = app.post_json(&url, facilitator.token(), &body).await?;
    assert_eq!(first.status(), 201);
    let first: Accepted = first.json().await?;
    for _ in 0..3 {
        let again = app.post_json(&url, facilitator.token(), &body).await?;
        assert_eq!(again.status(), 200, "a resend is not a new message");
        assert_eq!(again.json::<Accepted>().await?.seq, first.seq);
    }

    // Ten copies of a new message at once: one row, one number.
    let racing = message(
        facilitator.epoch(),
        &facilitator.encrypt(b"racing")?,
        uuid::Uuid::new_v4(),
    );
    let answers =
        join_all((0..10).map(|_| app.post_json(&url, facilitator.token(), &racing))).await;
    let mut seqs = HashSet::new();
    let mut created = 0;
    for answer in answers {
        let answer = answer?;
        created += usize::from(answer.status() == 201);
        seqs.insert(answer.json::<Accepted>().await?.seq);
    }
    assert_eq!((created, seqs.len()), (1, 1));

    // The same id with other bytes is a conflict, and changes nothing.
    let other = message(
        facilitator.epoch(),
        &facilitator.encrypt(b"something else")?,
        id,
    );
    expect_error(
        app.post_json(&url, facilitator.token(), &other).await?,
        409,
        ErrorCode::DuplicateMessageId,
    )
    .await?;
    let page: LogPage = app
        .get(&format!("{url}?after=1"), facilitator.token())
        .await?
        .json()
        .await?;
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].ciphertext, ciphertext);
    Ok(())
}

async fn concurrent_senders_leave_a_gap_free_log_everyone_reads_alike(app: TestApp) -> Result<()> {
    let (_facilitator, mut members, circle) = circle_with(&app, 3).await?;
    let url = path(&circle, LOG);
    let mut bodies = Vec::new();
    for (i, member) in members.iter_mut().enumerate() {
        for n in 0..20 {
            let text = format!("member {i} line {n}");
            bodies.push((
                i,
                message(
                    member.epoch(),
                    &member.encrypt(text.as_bytes())?,
                    uuid::Uuid::new_v4(),
                ),
            ));
        }
    }
    // Members send at the same time; each member's own messages go one after
    // another, as a client sends them.
    let senders = (0..members.len()).map(|i| {
        let (app, url, token) = (&app, &url, members[i].token());
        let mine: Vec<&SendMessage> = bodies
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, b)| b)
            .collect();
        async move {
            let mut seqs = Vec::new();
            for body in mine {
                let response = app.post_json(url, token, body).await?;
                ensure!(response.status() == 201);
                seqs.push(response.json::<Accepted>().await?.seq);
            }
            Ok::<_, anyhow::Error>(seqs)
        }
    });
    let mut seqs = Vec::new();
    for sent in join_all(senders).await {
        seqs.extend(sent?);
    }
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (2..62).collect::<Vec<_>>(),
        "gap-free after the commit at 1"
    );

    let mut orders = Vec::new();
    for member in &members {
        let page: LogPage = app
            .get(&format!("{url}?after=1"), member.token())
            .await?
            .json()
            .await?;
        orders.push(
            page.entries
                .iter()
                .map(|e| (e.seq, e.ciphertext.clone()))
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "every reader sees the same order"
    );
    for member in &mut members {
        let (plain, _) = member.sync(&app, &circle, 1).await?;
        assert_eq!(plain.len(), 40, "everyone else's forty lines decrypt");
    }
    Ok(())
}

async fn a_removed_member_reads_and_sends_nothing_and_strangers_see_404(
    app: TestApp,
) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 2).await?;
    let removal = facilitator.remove_commit(&[&members[1]])?;
    facilitator.commit_accepted(&app, &circle, &removal).await?;
    members[0].sync(&app, &circle, 1).await?;
    assert_eq!(
        facilitator
            .send(&app, &circle, "after the removal")
            .await?
            .status(),
        201
    );

    let removed = &mut members[1];
    expect_error(
        app.get(&path(&circle, ""), removed.token()).await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    expect_error(
        app.get(&path(&circle, LOG), removed.token()).await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    expect_error(
        removed.send(&app, &circle, "let me in").await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    let ack = app
        .post_json(&path(&circle, "/ack"), removed.token(), &json!({"seq": 1}))
        .await?;
    expect_error(ack, 404, ErrorCode::NotFound).await?;

    // The remaining member reads the message.
    let (plain, _) = members[0].sync(&app, &circle, 2).await?;
    assert_eq!(plain, vec![b"after the removal".to_vec()]);

    // A stranger cannot tell a real circle from a made-up one.
    let stranger = Member::sign_up(&app).await?;
    let made_up = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    let real = app.get(&path(&circle, LOG), stranger.token()).await?;
    let fake = app.get(&path(&made_up, LOG), stranger.token()).await?;
    assert_eq!(
        (real.status(), fake.status()),
        (
            reqwest::StatusCode::NOT_FOUND,
            reqwest::StatusCode::NOT_FOUND
        )
    );
    assert_eq!(real.text().await?, fake.text().await?);
    let garbage = app
        .get("/v1/circles/%%%/messages", stranger.token())
        .await?;
    expect_error(garbage, 404, ErrorCode::NotFound).await?;
    Ok(())
}

async fn acknowledged_and_expired_entries_leave_the_database(app: TestApp) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 1).await?;
    for text in ["one", "two", "three"] {
        facilitator.send(&app, &circle, text).await?;
    }
    let entries = |rows: &[String]| {
        rows.iter()
            .filter(|r| r.starts_with("log_entries:"))
            .count()
    };
    assert_eq!(entries(&app.db.dump().await?), 4);

    // Only the member has acknowledged: nothing can go yet.
    let (_, cursor) = members[0].sync(&app, &circle, 1).await?;
    let ack = app
        .post_json(
            &path(&circle, "/ack"),
            members[0].token(),
            &json!({ "seq": cursor }),
        )
        .await?;
    assert_eq!(ack.status(), 204);
    assert_eq!(entries(&app.db.dump().await?), 4);
    // The facilitator acknowledges up to the second message: three entries go.
    app.post_json(
        &path(&circle, "/ack"),
        facilitator.token(),
        &json!({ "seq": 3 }),
    )
    .await?;
    assert_eq!(entries(&app.db.dump().await?), 1);
    let page: LogPage = app
        .get(&path(&circle, LOG), facilitator.token())
        .await?
        .json()
        .await?;
    assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);

    // Retention: the sweeper removes what is older than the circle keeps.
    facilitator.send(&app, &circle, "four").await?;
    let storage = app.db.storage().await?;
    let purged = storage
        .purge_expired(hearth_server::now() + 31 * 24 * 3600)
        .await?;
    assert_eq!(purged.log_entries, 2);
    assert_eq!(entries(&app.db.dump().await?), 0);
    Ok(())
}

async fn limits_and_rules_answer_with_their_codes(db: Db) -> Result<()> {
    let app = TestApp::spawn_with(db, |c| c.delivery.default_max_members = 2).await?;
    let (mut facilitator, mut members, circle) = circle_with(&app, 2).await?;
    let url = path(&circle, LOG);

    // Ciphertext over 64 KiB.
    let huge = message(
        1,
        &Base64Bytes::from(vec![0u8; 64 * 1024 + 1]),
        uuid::Uuid::new_v4(),
    );
    expect_error(
        app.post_json(&url, facilitator.token(), &huge).await?,
        413,
        ErrorCode::PayloadTooLarge,
    )
    .await?;
    // A message from the future, a commit for an old epoch.
    let future = message(
        9,
        &Base64Bytes::from(hearth_tests::opaque_message(&circle, 9, b"x")),
        uuid::Uuid::new_v4(),
    );
    let body = expect_error(
        app.post_json(&url, facilitator.token(), &future).await?,
        409,
        ErrorCode::StaleEpoch,
    )
    .await?;
    assert_eq!(body.current_epoch, Some(1));
    let mut old = members[0].update_commit()?;
    old.epoch = 0;
    old.commit = Base64Bytes::from(hearth_tests::opaque_commit(&circle, 0));
    old.group_info = None;
    let body = expect_error(
        members[0].post_commit(&app, &circle, &old).await?,
        409,
        ErrorCode::StaleEpoch,
    )
    .await?;
    assert_eq!(body.current_epoch, Some(1));
    members[0].drop_own_commit()?;

    // Only a facilitator adds or removes others.
    let sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 2).await?;
    let (first, second) = members.split_at_mut(1);
    let by_member = first[0].remove_commit(&[&second[0]])?;
    expect_error(
        first[0].post_commit(&app, &circle, &by_member).await?,
        403,
        ErrorCode::NotFacilitator,
    )
    .await?;
    first[0].drop_own_commit()?;

    // The circle holds two members: a third does not fit.
    let add = facilitator.add_commit(&app, &[&sam]).await?;
    expect_error(
        facilitator.post_commit(&app, &circle, &add).await?,
        422,
        ErrorCode::CircleFull,
    )
    .await?;
    facilitator.drop_own_commit()?;

    // Every roster rule answers with its own code, so a client can tell which
    // it broke; none of these changes anything.
    let (sam_id, on_roster) = (sam.device.device_id, members[0].device.device_id);
    let change = |added: Vec<DeviceId>, removed: Vec<DeviceId>| {
        let mut bundle = add.clone();
        bundle.added = added;
        bundle.removed = removed;
        bundle
    };
    let mut no_welcome = change(vec![sam_id], vec![on_roster]);
    no_welcome.welcome = None;
    let mut unknown_request = change(vec![sam_id], vec![on_roster]);
    unknown_request.join_request_id = Some(uuid::Uuid::new_v4());
    let invite: Invite = app
        .post_json(&path(&circle, "/invites"), facilitator.token(), &json!({}))
        .await?
        .json()
        .await?;
    let alex = Member::sign_up(&app).await?;
    let alex_request: JoinRequestCreated = app
        .post_json(
            "/v1/invites/redeem",
            alex.token(),
            &json!({ "token": invite.token }),
        )
        .await?
        .json()
        .await?;
    let mut not_requested = change(vec![sam_id], vec![on_roster]);
    not_requested.join_request_id = Some(alex_request.join_request_id);
    let nobody = DeviceId::from_uuid(uuid::Uuid::new_v4());
    for (bundle, code) in [
        (
            change(vec![sam_id, sam_id], vec![]),
            ErrorCode::DuplicateDevice,
        ),
        (change(vec![on_roster], vec![]), ErrorCode::DeviceOnRoster),
        (change(vec![], vec![sam_id]), ErrorCode::DeviceNotOnRoster),
        (change(vec![nobody], vec![]), ErrorCode::UnknownDevice),
        (no_welcome, ErrorCode::WelcomeMissing),
        (unknown_request, ErrorCode::UnknownJoinRequest),
        (not_requested, ErrorCode::JoinRequestMismatch),
    ] {
        let answer = facilitator.post_commit(&app, &circle, &bundle).await?;
        expect_error(answer, 422, code).await?;
    }
    let still: Circle = app
        .get(&path(&circle, ""), facilitator.token())
        .await?
        .json()
        .await?;
    assert_eq!((still.epoch, still.roster.len()), (1, 3), "nothing changed");

    // A member may leave on their own.
    let mut leave = members[1].update_commit()?;
    leave.removed = vec![members[1].device.device_id];
    let response = members[1].post_commit(&app, &circle, &leave).await?;
    assert_eq!(response.status(), 201);
    expect_error(
        app.get(&path(&circle, ""), members[1].token()).await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;

    // Circle ids are unique; policy values are bounded.
    let again = app
        .post_json(
            "/v1/circles",
            facilitator.token(),
            &json!({ "circle_id": circle }),
        )
        .await?;
    expect_error(again, 409, ErrorCode::CircleExists).await?;
    let id = CircleId::from_bytes(rand_bytes::<16>().to_vec())?;
    let too_big = app
        .post_json(
            "/v1/circles",
            facilitator.token(),
            &json!({ "circle_id": id, "max_members": 1000 }),
        )
        .await?;
    expect_error(too_big, 422, ErrorCode::InvalidRequest).await?;
    let short_id = app
        .post_json(
            "/v1/circles",
            facilitator.token(),
            &json!({ "circle_id": "AAAA" }),
        )
        .await?;
    expect_error(short_id, 400, ErrorCode::BadRequest).await?;
    let info = app
        .get(&path(&circle, "/group-info"), facilitator.token())
        .await?;
    assert_eq!(
        info.status(),
        200,
        "the latest GroupInfo is kept for rejoining"
    );
    Ok(())
}

async fn an_invite_becomes_a_join_request_that_one_commit_approves(db: Db) -> Result<()> {
    use hearth_protocol::circles::{InviteList, JoinRequestList};
    let app = TestApp::spawn(db).await?;
    let (mut facilitator, mut members, circle) = circle_with(&app, 1).await?;
    let mut sam = Member::sign_up(&app).await?;
    sam.publish_key_packages(&app, 2).await?;

    // The facilitator mints a link for one person.
    let response = app
        .post_json(&path(&circle, "/invites"), facilitator.token(), &json!({}))
        .await?;
    assert_eq!(response.status(), 201);
    let invite: Invite = response.json().await?;
    assert!(invite.token.starts_with("hit_"));
    let listed: InviteList = app
        .get(&path(&circle, "/invites"), facilitator.token())
        .await?
        .json()
        .await?;
    let minted = listed
        .invites
        .iter()
        .find(|i| i.invite_id == invite.invite_id)
        .context("the new invite is listed")?;
    assert_eq!(minted.uses, 0);
    // A member is not a facilitator.
    let by_member = app
        .post_json(&path(&circle, "/invites"), members[0].token(), &json!({}))
        .await?;
    expect_error(by_member, 403, ErrorCode::NotFacilitator).await?;

    // Sam redeems it with an introduction only the facilitator can read.
    let note = rand_bytes::<200>().to_vec();
    let redeem = json!({ "token": invite.token, "note": Base64Bytes::from(note.clone()) });
    let response = app
        .post_json("/v1/invites/redeem", sam.token(), &redeem)
        .await?;
    assert_eq!(response.status(), 201);
    let created: JoinRequestCreated = response.json().await?;
    assert_eq!(created.circle_id, circle);
    // The invite was for one person: it is spent.
    let again = app
        .post_json("/v1/invites/redeem", members[0].token(), &redeem)
        .await?;
    expect_error(again, 403, ErrorCode::InviteInvalid).await?;

    let requests: JoinRequestList = app
        .get(&path(&circle, "/join-requests"), facilitator.token())
        .await?
        .json()
        .await?;
    assert_eq!(requests.join_requests.len(), 1);
    let request = &requests.join_requests[0];
    assert_eq!(request.join_request_id, created.join_request_id);
    assert_eq!(request.device_ids, vec![sam.device.device_id]);
    assert_eq!(
        request.note.as_ref().map(Base64Bytes::as_slice),
        Some(note.as_slice())
    );

    // Approval: a commit adding Sam's devices, naming the request.
    let mut bundle = facilitator.add_commit(&app, &[&sam]).await?;
    bundle.join_request_id = Some(created.join_request_id);
    facilitator.commit_accepted(&app, &circle, &bundle).await?;
    sam.join(&app).await?;
    members[0].sync(&app, &circle, 1).await?;
    let requests: JoinRequestList = app
        .get(&path(&circle, "/join-requests"), facilitator.token())
        .await?
        .json()
        .await?;
    assert!(
        requests.join_requests.is_empty(),
        "the approved request is consumed"
    );
    assert_eq!(
        facilitator
            .send(&app, &circle, "welcome, Sam")
            .await?
            .status(),
        201
    );
    let (plain, _) = sam.sync(&app, &circle, 0).await?;
    assert_eq!(plain, vec![b"welcome, Sam".to_vec()]);

    // A second invite: Alex asks, the facilitator declines; a revoked invite
    // and a made-up token are refused alike.
    let alex = Member::sign_up(&app).await?;
    let second: Invite = app
        .post_json(
            &path(&circle, "/invites"),
            facilitator.token(),
            &json!({"max_uses": 5}),
        )
        .await?
        .json()
        .await?;
    let asked: JoinRequestCreated = app
        .post_json(
            "/v1/invites/redeem",
            alex.token(),
            &json!({ "token": second.token }),
        )
        .await?
        .json()
        .await?;
    let decline = app
        .delete(
            &path(
                &circle,
                &format!("/join-requests/{}", asked.join_request_id),
            ),
            facilitator.token(),
        )
        .await?;
    assert_eq!(decline.status(), 204);
    let requests: JoinRequestList = app
        .get(&path(&circle, "/join-requests"), facilitator.token())
        .await?
        .json()
        .await?;
    assert!(requests.join_requests.is_empty());
    let revoke = app
        .delete(
            &path(&circle, &format!("/invites/{}", second.invite_id)),
            facilitator.token(),
        )
        .await?;
    assert_eq!(revoke.status(), 204);
    for token in [second.token.as_str(), "hit_made-up"] {
        let response = app
            .post_json(
                "/v1/invites/redeem",
                alex.token(),
                &json!({ "token": token }),
            )
            .await?;
        expect_error(response, 403, ErrorCode::InviteInvalid).await?;
    }
    // Sam, already in, cannot queue himself again — and opening the link
    // spends none of its one use, so the person it was for still gets in.
    let third: Invite = app
        .post_json(
            &path(&circle, "/invites"),
            facilitator.token(),
            &json!({ "max_uses": 1 }),
        )
        .await?
        .json()
        .await?;
    let response = app
        .post_json(
            "/v1/invites/redeem",
            sam.token(),
            &json!({ "token": third.token }),
        )
        .await?;
    expect_error(response, 409, ErrorCode::AlreadyMember).await?;
    let (_, newcomer) = app.signed_in().await?;
    let response = app
        .post_json(
            "/v1/invites/redeem",
            &newcomer.access_token,
            &json!({ "token": third.token }),
        )
        .await?;
    assert_eq!(response.status(), 201, "the invite was not used up by Sam");
    Ok(())
}

async fn a_member_whose_state_broke_rejoins_by_external_commit(app: TestApp) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 2).await?;
    let (first, second) = members.split_at_mut(1);
    let (alex, sam) = (&mut first[0], &mut second[0]);

    // Alex's phone lost its MLS state. It rejoins from the stored GroupInfo.
    let bundle = alex.rejoin_commit(&app, &circle).await?;
    assert_eq!(bundle.epoch, 1);
    let accepted = alex.commit_accepted(&app, &circle, &bundle).await?;
    assert_eq!(accepted.epoch, 2);

    // The others process the external commit and everyone agrees.
    facilitator.sync(&app, &circle, 1).await?;
    sam.sync(&app, &circle, 1).await?;
    let authenticators: HashSet<Vec<u8>> = [&*alex, &*sam, &facilitator]
        .iter()
        .map(|m| {
            m.group
                .as_ref()
                .map(|g| g.epoch_authenticator().as_slice().to_vec())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(authenticators.len(), 1, "one view of epoch 2");
    assert_eq!(alex.send(&app, &circle, "I'm back").await?.status(), 201);
    let (plain, _) = sam.sync(&app, &circle, accepted.seq).await?;
    assert_eq!(plain, vec![b"I'm back".to_vec()]);

    // A device not on the roster cannot rejoin this way.
    let mut stranger = Member::sign_up(&app).await?;
    let refused = stranger.rejoin_commit(&app, &circle).await;
    assert!(
        refused.is_err(),
        "a stranger cannot even read the GroupInfo"
    );
    Ok(())
}

async fn key_package_claims_are_rate_limited(db: Db) -> Result<()> {
    let app = TestApp::spawn_with(db, |c| {
        c.delivery.claim_rate = hearth_server::config::Bucket {
            burst: 3,
            per_minute: 1,
        };
    })
    .await?;
    let sam = Member::sign_up(&app).await?;
    let mut claimer = Member::sign_up(&app).await?;
    claimer.create_circle(&app).await?;
    claimer.invite(&app, &[&sam]).await?;
    sam.publish_key_packages(&app, 5).await?;
    let body = json!({ "device_ids": [sam.device.device_id] });
    for _ in 0..3 {
        assert_eq!(
            app.post_json("/v1/key-packages/claim", claimer.token(), &body)
                .await?
                .status(),
            200
        );
    }
    let limited = app
        .post_json("/v1/key-packages/claim", claimer.token(), &body)
        .await?;
    assert!(limited.headers().contains_key("retry-after"));
    expect_error(limited, 429, ErrorCode::RateLimited).await?;
    let count: KeyPackageCount = app
        .get("/v1/key-packages/count", sam.token())
        .await?
        .json()
        .await?;
    assert_eq!(count.available, 2, "a refused claim consumes nothing");
    Ok(())
}

async fn a_deleted_account_leaves_no_trace_in_any_circle(app: TestApp) -> Result<()> {
    let (mut facilitator, mut members, circle) = circle_with(&app, 2).await?;
    // Sam (the first member) talks, keeps KeyPackages waiting, and asks to join
    // another circle.
    members[0].publish_key_packages(&app, 3).await?;
    members[0].send(&app, &circle, "before I go").await?;
    let mut other_facilitator = Member::sign_up(&app).await?;
    let other = other_facilitator.create_circle(&app).await?;
    let invite: hearth_protocol::circles::Invite = app
        .post_json(
            &path(&other, "/invites"),
            other_facilitator.token(),
            &json!({}),
        )
        .await?
        .json()
        .await?;
    let note = Base64Bytes::from(rand_bytes::<64>().to_vec());
    app.post_json(
        "/v1/invites/redeem",
        members[0].token(),
        &json!({"token": invite.token, "note": note}),
    )
    .await?;
    let sam_device = members[0].device.device_id.to_string();
    let sam_account = members[0].device.account_id.to_string();
    assert!(app.db.dump().await?.iter().any(|r| r.contains(&sam_device)));

    assert_eq!(
        app.delete("/v1/account", members[0].token())
            .await?
            .status(),
        204
    );
    for row in app.db.dump().await? {
        assert!(
            !row.contains(&sam_device) && !row.contains(&sam_account),
            "left behind: {row}"
        );
    }
    // The circle carries on for everyone else.
    assert_eq!(
        facilitator
            .send(&app, &circle, "still here")
            .await?
            .status(),
        201
    );
    let (plain, _) = members[1].sync(&app, &circle, 1).await?;
    assert_eq!(
        plain,
        vec![b"still here".to_vec()],
        "Sam's message went with Sam"
    );
    Ok(())
}

/// Sends an opaque application message as `token`'s device.
async fn send_opaque(app: &TestApp, token: &str, circle: &CircleId, epoch: u64) -> Result<u64> {
    let body = SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch,
        ciphertext: Base64Bytes::from(hearth_tests::opaque_message(circle, epoch, b"m")),
    };
    let answer = app.post_json(&path(circle, LOG), token, &body).await?;
    ensure!(answer.status() == 201, "send: {}", answer.status());
    Ok(answer.json::<Accepted>().await?.seq)
}

/// `POST /v1/sync` as `token`'s device.
async fn sync_raw(app: &TestApp, token: &str, body: &serde_json::Value) -> Result<SyncResponse> {
    let answer = app.post_json("/v1/sync", token, body).await?;
    ensure!(answer.status() == 200, "sync: {}", answer.status());
    Ok(answer.json().await?)
}

async fn one_sync_reads_every_circle_and_its_cursors_acknowledge(app: TestApp) -> Result<()> {
    // Fran facilitates two circles; Max is in both (each by one commit, so
    // each log starts with it, and a Welcome waits for Max in each).
    let people = [app.signed_in().await?, app.signed_in().await?];
    let (fran, max) = (&people[0].1.access_token, &people[1].1.access_token);
    let max_device = people[1].0.device_id;
    let tuesday = app.opaque_circle_of(&people).await?;
    let thursday = app.opaque_circle_of(&people).await?;
    send_opaque(&app, fran, &tuesday, 1).await?;
    send_opaque(&app, fran, &tuesday, 1).await?;
    send_opaque(&app, fran, &thursday, 1).await?;

    // One request: both circles after Max's cursors, the Welcomes, the pool,
    // the account's devices.
    let cursors = |a: u64, b: u64| {
        json!({ "cursors": [
            { "circle_id": tuesday, "after": a },
            { "circle_id": thursday, "after": b },
        ]})
    };
    let answer = sync_raw(&app, max, &cursors(1, 1)).await?;
    let seqs = |i: usize| -> Vec<u64> { answer.circles[i].entries.iter().map(|e| e.seq).collect() };
    assert_eq!(answer.circles.len(), 2);
    assert_eq!((seqs(0), seqs(1)), (vec![2, 3], vec![2]));
    assert_eq!(answer.circles[0].next_after, 3);
    assert!(answer.circles.iter().all(|c| !c.more && c.roster_size == 2));
    assert!(answer.removed.is_empty());
    assert_eq!(answer.welcomes.len(), 2);
    assert_eq!(answer.devices, [max_device]);
    assert_eq!(answer.key_packages.available, 0);

    // Max reports what it processed with the next sync; Fran has not, so
    // nothing is deleted yet.
    let entries = |rows: &[String]| {
        rows.iter()
            .filter(|r| r.starts_with("log_entries:"))
            .count()
    };
    let mut processed = cursors(3, 2);
    processed["welcomes_done"] = json!(
        answer
            .welcomes
            .iter()
            .map(|w| w.welcome_id)
            .collect::<Vec<_>>()
    );
    let again = sync_raw(&app, max, &processed).await?;
    assert!(again.circles.iter().all(|c| c.entries.is_empty()));
    assert!(again.welcomes.is_empty(), "processed Welcomes are deleted");
    assert_eq!(entries(&app.db.dump().await?), 5);

    // A sync with nothing new and nothing to acknowledge writes nothing.
    let writes = || app.counter("hearth_acknowledgement_transactions_total");
    let before = writes().await?;
    sync_raw(&app, max, &cursors(3, 2)).await?;
    assert_eq!(
        writes().await?,
        before,
        "no write for a cursor already acknowledged"
    );

    // Fran's sync acknowledges the rest: every entry both processed goes.
    sync_raw(&app, fran, &cursors(3, 2)).await?;
    assert_eq!(entries(&app.db.dump().await?), 0);

    // Fran removes Max from Thursday: Max's next sync says so, and reads
    // Tuesday on.
    let removal = hearth_protocol::circles::CommitBundle {
        epoch: 1,
        commit: Base64Bytes::from(hearth_tests::opaque_commit(&thursday, 1)),
        welcome: None,
        group_info: None,
        added: Vec::new(),
        removed: vec![max_device],
        join_request_id: None,
    };
    let removed = app
        .post_json(&path(&thursday, "/commits"), fran, &removal)
        .await?;
    assert_eq!(removed.status(), 201);
    send_opaque(&app, fran, &tuesday, 1).await?;
    let after = sync_raw(&app, max, &cursors(3, 2)).await?;
    assert_eq!(after.removed, std::slice::from_ref(&thursday));
    assert_eq!(after.circles.len(), 1);
    assert_eq!(after.circles[0].entries.len(), 1);
    assert_eq!(after.circles[0].roster_size, 2);

    // Bad input: a clear code, nothing changed.
    let twice = json!({ "cursors": [
        { "circle_id": tuesday, "after": 0 },
        { "circle_id": tuesday, "after": 4 },
    ]});
    let refused = app.post_json("/v1/sync", max, &twice).await?;
    expect_error(refused, 422, ErrorCode::InvalidRequest).await?;
    let many: Vec<_> = (0..=hearth_protocol::sync::MAX_CURSORS)
        .map(|_| json!({ "circle_id": CircleId::from_bytes(rand_bytes::<16>().to_vec()).ok(), "after": 0 }))
        .collect();
    let refused = app
        .post_json("/v1/sync", max, &json!({ "cursors": many }))
        .await?;
    expect_error(refused, 422, ErrorCode::InvalidRequest).await?;
    let stranger = app.signed_in().await?.1.access_token;
    let outside = sync_raw(&app, &stranger, &cursors(0, 0)).await?;
    assert_eq!(
        outside.removed.len(),
        2,
        "a stranger learns nothing but 'not yours'"
    );
    assert!(outside.circles.is_empty());
    Ok(())
}
