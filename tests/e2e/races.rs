//! Requests that race answer like any others: eight at a time on everything
//! two devices (or two requests of one) can race on — commits at one epoch,
//! resends of one message, redemptions of a single-use invite, the first
//! snapshot, revocations of one invite, acknowledgements, sends racing their
//! own device's revocation — and never a 5xx; where one must win, exactly
//! one does. A member who reads while being removed gets nothing from the
//! removal on.

use anyhow::Result;
use futures_util::future::join_all;
use hearth_protocol::Base64Bytes;
use hearth_protocol::circles::{
    Accepted, Ack, CommitBundle, CreateInvite, Invite, LogPage, PutSnapshot, RedeemInvite,
    SendMessage,
};
use hearth_tests::{Db, TestApp, on_both_databases, rand_bytes};

on_both_databases!(
    racing_requests_never_answer_5xx_and_one_wins_where_one_must,
    a_member_reading_while_removed_gets_nothing_from_the_removal_on,
);

/// The statuses of a race, after checking none is a server error.
async fn statuses(
    what: &str,
    answers: Vec<Result<reqwest::Response, anyhow::Error>>,
) -> Result<Vec<u16>> {
    let mut statuses = Vec::new();
    for answer in answers {
        let status = answer?.status().as_u16();
        assert!(status < 500, "{what}: a racing request answered {status}");
        statuses.push(status);
    }
    Ok(statuses)
}

fn successes(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| (200..300).contains(*s)).count()
}

async fn racing_requests_never_answer_5xx_and_one_wins_where_one_must(db: Db) -> Result<()> {
    let app = &TestApp::spawn(db).await?;
    let (circle, tokens) = app.opaque_circle(3).await?;
    let facilitator = &tokens[0];
    let circle_path = |rest: &str| format!("/v1/circles/{circle}{rest}");

    // Eight commits at the same epoch: one is the next epoch, seven are stale.
    let commits = (0..8).map(|_| {
        let bundle = CommitBundle {
            epoch: 1,
            commit: Base64Bytes::from(hearth_tests::opaque_commit(&circle, 1)),
            welcome: None,
            group_info: None,
            added: Vec::new(),
            removed: Vec::new(),
            join_request_id: None,
        };
        let path = circle_path("/commits");
        async move { app.post_json(&path, facilitator, &bundle).await }
    });
    let raced = statuses("commits", join_all(commits).await).await?;
    assert_eq!(successes(&raced), 1, "one commit per epoch: {raced:?}");

    // One message resent eight times at once: every answer is its one number.
    let message = SendMessage {
        message_id: uuid::Uuid::new_v4(),
        epoch: 2,
        ciphertext: Base64Bytes::from(hearth_tests::opaque_message(&circle, 2, b"resent")),
    };
    let messages = circle_path("/messages");
    let sends = (0..8).map(|_| app.post_json(&messages, &tokens[1], &message));
    let raced = statuses("resends", join_all(sends).await).await?;
    assert_eq!(
        successes(&raced),
        8,
        "a resend is answered, not refused: {raced:?}"
    );

    // A single-use invite redeemed by eight people at once.
    let minted = app
        .post_json(
            &circle_path("/invites"),
            facilitator,
            &CreateInvite {
                expires_in_secs: None,
                max_uses: Some(1),
            },
        )
        .await?;
    let invite: Invite = minted.json().await?;
    let mut redeemers = Vec::new();
    for _ in 0..8 {
        redeemers.push(app.signed_in().await?.1.access_token);
    }
    let redeem = RedeemInvite {
        token: invite.token.clone(),
        note: None,
    };
    let redemptions = redeemers
        .iter()
        .map(|token| app.post_json("/v1/invites/redeem", token, &redeem));
    let raced = statuses("redemptions", join_all(redemptions).await).await?;
    assert_eq!(
        successes(&raced),
        1,
        "a single-use invite is used once: {raced:?}"
    );

    // Eight first snapshots: one is version 1, the rest conflict.
    let snapshot = PutSnapshot {
        version: 0,
        snapshot: Base64Bytes::from(rand_bytes::<64>().to_vec()),
    };
    let snapshot_path = circle_path("/snapshot");
    let puts = (0..8).map(|_| app.put_json(&snapshot_path, facilitator, &snapshot));
    let raced = statuses("snapshots", join_all(puts).await).await?;
    assert_eq!(successes(&raced), 1, "one first snapshot: {raced:?}");

    // One invite revoked eight times: one 204, seven 404.
    let minted: Invite = app
        .post_json(
            &circle_path("/invites"),
            facilitator,
            &CreateInvite::default(),
        )
        .await?
        .json()
        .await?;
    let revoke = circle_path(&format!("/invites/{}", minted.invite_id));
    let revokes = (0..8).map(|_| app.delete(&revoke, facilitator));
    let raced = statuses("revocations", join_all(revokes).await).await?;
    assert_eq!(successes(&raced), 1, "revoked once: {raced:?}");

    // Acknowledgements of different numbers at once.
    let ack_path = circle_path("/ack");
    let ack_bodies: Vec<Ack> = (1..=8).map(|seq| Ack { seq }).collect();
    let acks = ack_bodies
        .iter()
        .map(|body| app.post_json(&ack_path, &tokens[2], body));
    statuses("acks", join_all(acks).await).await?;

    // Sends racing their own device's revocation: each is either accepted,
    // refused as unauthenticated, or (authenticated just before, appended
    // just after) refused because the revoked device is on no roster any
    // more — never half-done.
    let devices: serde_json::Value = app.get("/v1/devices", &tokens[3]).await?.json().await?;
    let me = devices["devices"][0]["device_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut racing = Vec::new();
    for i in 0..8u8 {
        let message = SendMessage {
            message_id: uuid::Uuid::new_v4(),
            epoch: 2,
            ciphertext: Base64Bytes::from(hearth_tests::opaque_message(&circle, 2, &[i; 64])),
        };
        racing.push(tokio::spawn({
            let (http, url, token) = (
                app.http.clone(),
                app.url(&circle_path("/messages")),
                tokens[3].clone(),
            );
            async move {
                Ok(http
                    .post(url)
                    .bearer_auth(token)
                    .json(&message)
                    .send()
                    .await?)
            }
        }));
        if i == 3 {
            let (http, url, token) = (
                app.http.clone(),
                app.url(&format!("/v1/devices/{me}")),
                tokens[3].clone(),
            );
            racing.push(tokio::spawn(async move {
                Ok(http.delete(url).bearer_auth(token).send().await?)
            }));
        }
    }
    let mut answers = Vec::new();
    for task in racing {
        answers.push(task.await?);
    }
    let raced = statuses("sends racing a revocation", answers).await?;
    assert!(
        raced
            .iter()
            .all(|s| matches!(s, 200 | 201 | 204 | 401 | 404)),
        "accepted, unauthenticated or off the roster: {raced:?}"
    );
    Ok(())
}

async fn a_member_reading_while_removed_gets_nothing_from_the_removal_on(db: Db) -> Result<()> {
    use std::time::{Duration, Instant};
    let app = &TestApp::spawn(db).await?;
    let mut people = Vec::new();
    for _ in 0..7 {
        people.push(app.signed_in().await?);
    }
    let circle = app.opaque_circle_of(&people).await?;
    let facilitator = people[0].1.access_token.clone();
    let messages = app.url(&format!("/v1/circles/{circle}/messages"));
    let mut epoch = 1;
    // One member at a time is removed while four of their own requests page
    // through the log as fast as they can. Reads that pass the roster check
    // just before the commit lands must not carry the commit (or anything
    // after it) home.
    for (device, tokens) in &people[1..] {
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (http, url, token) = (
                    app.http.clone(),
                    messages.clone(),
                    tokens.access_token.clone(),
                );
                tokio::spawn(async move {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    let mut seen = Vec::new();
                    while Instant::now() < deadline {
                        let answer = http
                            .get(format!("{url}?after=0"))
                            .bearer_auth(&token)
                            .send()
                            .await?;
                        match answer.status().as_u16() {
                            200 => {
                                let page: LogPage = answer.json().await?;
                                seen.extend(page.entries.iter().map(|e| e.seq));
                            }
                            404 => return Ok(seen),
                            429 => tokio::task::yield_now().await,
                            other => anyhow::bail!("a read answered {other}"),
                        }
                    }
                    anyhow::bail!("the removed member could still read after 10 s")
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let removal = CommitBundle {
            epoch,
            commit: Base64Bytes::from(hearth_tests::opaque_commit(&circle, epoch)),
            welcome: None,
            group_info: None,
            added: Vec::new(),
            removed: vec![device.device_id],
            join_request_id: None,
        };
        let answer = app
            .post_json(
                &format!("/v1/circles/{circle}/commits"),
                &facilitator,
                &removal,
            )
            .await?;
        assert_eq!(answer.status(), 201, "the removal is accepted");
        let accepted: Accepted = answer.json().await?;
        epoch = accepted.epoch;
        for reader in readers {
            let seen = reader.await??;
            assert!(
                seen.iter().all(|seq| *seq < accepted.seq),
                "a member removed at seq {} read {seen:?}",
                accepted.seq
            );
        }
    }
    Ok(())
}
