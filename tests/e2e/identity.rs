//! Devices, accounts and logins through the HTTP API.

use anyhow::Result;
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_protocol::auth::{DeviceList, LinkToken, LoginTokens, register_message};
use hearth_protocol::{ErrorBody, ErrorCode};
use hearth_tests::{Db, TestApp, b64, expect_error, on_both_databases, on_postgres, rand_bytes};
use serde_json::json;
use std::time::Duration;

on_both_databases!(
    a_new_device_registers_logs_in_refreshes_and_sees_itself,
    a_second_device_joins_the_account_with_a_one_time_link,
    unknown_device_wrong_signature_and_revoked_device_look_the_same,
    a_replayed_refresh_token_revokes_every_token_of_that_login,
    a_revoked_device_is_locked_out_on_its_next_request,
    logging_out_ends_the_login_and_nothing_else,
    deleting_an_account_leaves_no_row_of_it_behind,
    bad_registrations_get_clear_errors_and_change_nothing,
    an_access_token_works_until_it_expires_and_not_a_second_longer,
    eight_racing_refreshes_of_one_token_rotate_once_and_end_the_login,
);
on_postgres!(a_login_ended_on_one_node_is_refused_by_the_other_at_once,);

async fn a_new_device_registers_logs_in_refreshes_and_sees_itself(app: TestApp) -> Result<()> {
    // Sam's phone registers with a fresh key and gets a new account.
    let sam = app.register().await?;
    let tokens = app.login(&sam).await?;
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.expires_in <= 900);
    assert!(tokens.refresh_token.starts_with("hrt_"));

    let list: DeviceList = app
        .get("/v1/devices", &tokens.access_token)
        .await?
        .json()
        .await?;
    assert_eq!(list.account_id, sam.account_id);
    assert_eq!(list.devices.len(), 1);
    assert_eq!(list.devices[0].device_id, sam.device_id);
    assert!(list.devices[0].current);
    assert_eq!(
        list.devices[0].public_key.as_slice(),
        sam.key.verifying_key().as_bytes()
    );

    // The refresh gives a new pair; the new access token works.
    let response = app.refresh(&tokens.refresh_token).await?;
    assert_eq!(response.status(), 200);
    let renewed: LoginTokens = response.json().await?;
    assert_ne!(renewed.refresh_token, tokens.refresh_token);
    assert_eq!(
        app.get("/v1/devices", &renewed.access_token)
            .await?
            .status(),
        200
    );

    // A second login is a second, independent login.
    let other = app.login(&sam).await?;
    assert_ne!(other.refresh_token, renewed.refresh_token);
    assert_eq!(app.refresh(&other.refresh_token).await?.status(), 200);
    Ok(())
}

async fn a_second_device_joins_the_account_with_a_one_time_link(app: TestApp) -> Result<()> {
    let (phone, tokens) = app.signed_in().await?;
    let response = app.post("/v1/link-tokens", &tokens.access_token).await?;
    assert_eq!(response.status(), 201);
    let link: LinkToken = response.json().await?;

    // The laptop joins Sam's account with the link.
    let laptop = app
        .register_key(
            SigningKey::from_bytes(&rand_bytes()),
            Some(&link.link_token),
        )
        .await?;
    assert_eq!(laptop.account_id, phone.account_id);
    assert_ne!(laptop.device_id, phone.device_id);
    let laptop_tokens = app.login(&laptop).await?;
    let list: DeviceList = app
        .get("/v1/devices", &laptop_tokens.access_token)
        .await?
        .json()
        .await?;
    assert_eq!(list.devices.len(), 2);
    assert!(
        list.devices
            .iter()
            .any(|d| d.device_id == laptop.device_id && d.current)
    );
    assert!(
        list.devices
            .iter()
            .any(|d| d.device_id == phone.device_id && !d.current)
    );

    // The link was one-time: a third device cannot reuse it.
    let tablet = SigningKey::from_bytes(&rand_bytes());
    let again = app.register_raw(&tablet, Some(&link.link_token)).await?;
    expect_error(again, 403, ErrorCode::LinkTokenInvalid).await?;
    let forged = app
        .register_raw(&tablet, Some("hlt_not-a-real-token"))
        .await?;
    expect_error(forged, 403, ErrorCode::LinkTokenInvalid).await?;
    Ok(())
}

async fn unknown_device_wrong_signature_and_revoked_device_look_the_same(
    app: TestApp,
) -> Result<()> {
    let (sam, tokens) = app.signed_in().await?;
    let (revoked, revoked_tokens) = app.signed_in().await?;
    let response = app
        .delete(
            &format!("/v1/devices/{}", revoked.device_id),
            &revoked_tokens.access_token,
        )
        .await?;
    assert_eq!(response.status(), 204);

    let stranger = SigningKey::from_bytes(&rand_bytes());
    let unknown_id = hearth_server::crypto::new_device_id()?;
    let attempts = [
        (
            "unknown device",
            app.login_raw(&stranger, unknown_id).await?,
        ),
        (
            "wrong signature",
            app.login_raw(&stranger, sam.device_id).await?,
        ),
        (
            "revoked device",
            app.login_raw(&revoked.key, revoked.device_id).await?,
        ),
    ];
    let mut bodies = Vec::new();
    for (what, response) in attempts {
        assert_eq!(response.status(), 401, "{what}");
        bodies.push(response.text().await?);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "identical bodies: {bodies:?}"
    );
    let body: ErrorBody = serde_json::from_str(&bodies[0])?;
    assert_eq!(body.code, ErrorCode::Unauthorized);
    // Sam himself is unaffected.
    assert_eq!(
        app.get("/v1/devices", &tokens.access_token).await?.status(),
        200
    );
    Ok(())
}

async fn a_replayed_refresh_token_revokes_every_token_of_that_login(app: TestApp) -> Result<()> {
    let (_, first) = app.signed_in().await?;
    let second: LoginTokens = app.refresh(&first.refresh_token).await?.json().await?;
    let third: LoginTokens = app.refresh(&second.refresh_token).await?.json().await?;
    assert_eq!(
        app.get("/v1/devices", &third.access_token).await?.status(),
        200
    );

    // An attacker replays the first, already rotated, refresh token.
    expect_error(
        app.refresh(&first.refresh_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    // Everything descended from that login is dead: the newest refresh token
    // and the newest access token alike.
    expect_error(
        app.refresh(&third.refresh_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    expect_error(
        app.get("/v1/devices", &third.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    Ok(())
}

async fn a_revoked_device_is_locked_out_on_its_next_request(app: TestApp) -> Result<()> {
    let (phone, phone_tokens) = app.signed_in().await?;
    let lost = app.link_device(&phone_tokens.access_token).await?;
    let lost_tokens = app.login(&lost).await?;
    // The laptop was in use: the server has seen its login live.
    assert_eq!(
        app.get("/v1/devices", &lost_tokens.access_token)
            .await?
            .status(),
        200
    );

    // Sam's laptop was stolen; the phone revokes it.
    let response = app
        .delete(
            &format!("/v1/devices/{}", lost.device_id),
            &phone_tokens.access_token,
        )
        .await?;
    assert_eq!(response.status(), 204);
    expect_error(
        app.get("/v1/devices", &lost_tokens.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    expect_error(
        app.refresh(&lost_tokens.refresh_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    expect_error(
        app.login_raw(&lost.key, lost.device_id).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;

    let list: DeviceList = app
        .get("/v1/devices", &phone_tokens.access_token)
        .await?
        .json()
        .await?;
    assert_eq!(
        list.devices.iter().map(|d| d.device_id).collect::<Vec<_>>(),
        [phone.device_id]
    );

    // Another account's device, or a made-up id, is simply not found.
    let (stranger, _) = app.signed_in().await?;
    for path in [
        format!("/v1/devices/{}", stranger.device_id),
        format!("/v1/devices/{}", lost.device_id),
        "/v1/devices/not-an-id".to_owned(),
    ] {
        expect_error(
            app.delete(&path, &phone_tokens.access_token).await?,
            404,
            ErrorCode::NotFound,
        )
        .await?;
    }
    Ok(())
}

async fn logging_out_ends_the_login_and_nothing_else(app: TestApp) -> Result<()> {
    let (sam, on_phone) = app.signed_in().await?;
    let elsewhere = app.login(&sam).await?;
    assert_eq!(
        app.delete("/v1/logins/current", &on_phone.access_token)
            .await?
            .status(),
        204
    );
    expect_error(
        app.get("/v1/devices", &on_phone.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    expect_error(
        app.refresh(&on_phone.refresh_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    assert_eq!(
        app.get("/v1/devices", &elsewhere.access_token)
            .await?
            .status(),
        200
    );
    Ok(())
}

async fn deleting_an_account_leaves_no_row_of_it_behind(app: TestApp) -> Result<()> {
    let (sam, tokens) = app.signed_in().await?;
    let laptop = app.link_device(&tokens.access_token).await?;
    let laptop_tokens = app.login(&laptop).await?;
    app.post("/v1/link-tokens", &tokens.access_token).await?;
    let (alex, alex_tokens) = app.signed_in().await?;

    let before = app.db.dump().await?;
    assert!(
        before
            .iter()
            .any(|r| r.contains(&sam.account_id.to_string())),
        "the dump sees Sam"
    );

    assert_eq!(
        app.delete("/v1/account", &tokens.access_token)
            .await?
            .status(),
        204
    );
    expect_error(
        app.get("/v1/devices", &laptop_tokens.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    expect_error(
        app.refresh(&tokens.refresh_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;

    let db = app.stop().await?;
    let rows = db.dump().await?;
    let traces = [
        sam.account_id.to_string(),
        sam.device_id.to_string(),
        laptop.device_id.to_string(),
        hearth_tests::hex(sam.key.verifying_key().as_bytes()),
        hearth_tests::hex(laptop.key.verifying_key().as_bytes()),
    ];
    for row in &rows {
        for trace in &traces {
            assert!(
                !row.contains(trace.as_str()),
                "a row of the deleted account remains: {row}"
            );
        }
    }
    assert!(
        rows.iter()
            .any(|r| r.contains(&alex.account_id.to_string())),
        "Alex's account stays"
    );
    drop(alex_tokens);
    Ok(())
}

async fn bad_registrations_get_clear_errors_and_change_nothing(app: TestApp) -> Result<()> {
    let (existing, tokens) = app.signed_in().await?;
    let post = |body: serde_json::Value| app.http.post(app.url("/v1/devices")).json(&body).send();

    let key = SigningKey::from_bytes(&rand_bytes());
    let public = key.verifying_key().to_bytes();
    let challenge = app.challenge().await?;
    let signature = key.sign(&register_message(&challenge, &public)).to_bytes();

    // Not base64url, a missing field, not JSON at all.
    let response = post(
        json!({"public_key": "+/+/", "challenge": b64(&challenge), "signature": b64(&signature)}),
    )
    .await?;
    expect_error(response, 400, ErrorCode::BadRequest).await?;
    let body = expect_error(
        post(json!({"public_key": b64(&public)})).await?,
        400,
        ErrorCode::BadRequest,
    )
    .await?;
    assert!(body.message.contains("missing field"), "{}", body.message);
    let response = app
        .http
        .post(app.url("/v1/devices"))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await?;
    expect_error(response, 400, ErrorCode::BadRequest).await?;
    let response = app
        .http
        .post(app.url("/v1/devices"))
        .body("{}")
        .send()
        .await?;
    expect_error(response, 415, ErrorCode::UnsupportedMediaType).await?;

    // A key of the wrong length.
    let response = post(json!({"public_key": b64(&public[..31]), "challenge": b64(&challenge), "signature": b64(&signature)})).await?;
    expect_error(response, 422, ErrorCode::InvalidRequest).await?;

    // The right request works once; the same challenge is then spent.
    let good = json!({"public_key": b64(&public), "challenge": b64(&challenge), "signature": b64(&signature)});
    assert_eq!(post(good.clone()).await?.status(), 201);
    expect_error(post(good).await?, 401, ErrorCode::Unauthorized).await?;

    // Registering the same key again, properly signed, is a conflict.
    let again = app.register_raw(&key, None).await?;
    expect_error(again, 409, ErrorCode::DeviceExists).await?;
    let existing_again = app.register_raw(&existing.key, None).await?;
    expect_error(existing_again, 409, ErrorCode::DeviceExists).await?;

    // A signature over something else.
    let fresh = SigningKey::from_bytes(&rand_bytes());
    let challenge = app.challenge().await?;
    let wrong = fresh.sign(b"something else").to_bytes();
    let response = post(json!({"public_key": b64(fresh.verifying_key().as_bytes()), "challenge": b64(&challenge), "signature": b64(&wrong)})).await?;
    expect_error(response, 401, ErrorCode::Unauthorized).await?;

    // None of it disturbed what was accepted before.
    assert_eq!(
        app.get("/v1/devices", &tokens.access_token).await?.status(),
        200
    );
    app.login(&existing).await?;
    Ok(())
}

async fn an_access_token_works_until_it_expires_and_not_a_second_longer(db: Db) -> Result<()> {
    // Tokens live two seconds here, with no leeway.
    let app = TestApp::spawn_with(db, |c| {
        c.auth.access_token_ttl_secs = 2;
        c.auth.leeway_secs = 0;
    })
    .await?;
    let (_, tokens) = app.signed_in().await?;
    // Sam's phone makes several requests with one token: the server checks
    // its signature once and remembers the answer...
    for _ in 0..3 {
        assert_eq!(
            app.get("/v1/devices", &tokens.access_token).await?.status(),
            200
        );
    }
    // ...but only until the token expires.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    expect_error(
        app.get("/v1/devices", &tokens.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    app.stop().await?;
    Ok(())
}

async fn eight_racing_refreshes_of_one_token_rotate_once_and_end_the_login(
    app: TestApp,
) -> Result<()> {
    // A phone retries a refresh eight times at once (a flaky network, a bug):
    // one rotation wins, the replays show someone holds a copy, and the
    // login ends. Never a 500, on any round.
    for _ in 0..12 {
        let (_, tokens) = app.signed_in().await?;
        let racing = (0..8).map(|_| app.refresh(&tokens.refresh_token));
        let statuses: Vec<u16> = futures_util::future::join_all(racing)
            .await
            .into_iter()
            .map(|answer| answer.map(|a| a.status().as_u16()))
            .collect::<Result<_>>()?;
        let mut sorted = statuses.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [200, 401, 401, 401, 401, 401, 401, 401],
            "{statuses:?}"
        );
        expect_error(
            app.get("/v1/devices", &tokens.access_token).await?,
            401,
            ErrorCode::Unauthorized,
        )
        .await?;
    }
    Ok(())
}

async fn a_login_ended_on_one_node_is_refused_by_the_other_at_once(db: Db) -> Result<()> {
    let (first, second) = TestApp::two_nodes(db, |_| {}).await?;
    // Sam's phone and laptop both talk to the second node, which has seen
    // their logins live.
    let (_, phone_tokens) = first.signed_in().await?;
    let laptop = first.link_device(&phone_tokens.access_token).await?;
    let laptop_tokens = first.login(&laptop).await?;
    for token in [&phone_tokens.access_token, &laptop_tokens.access_token] {
        assert_eq!(second.get("/v1/devices", token).await?.status(), 200);
    }

    // The laptop is revoked through the first node; the second refuses it
    // as soon as the news crosses (well within a second), and still serves
    // the phone.
    assert_eq!(
        first
            .delete(
                &format!("/v1/devices/{}", laptop.device_id),
                &phone_tokens.access_token,
            )
            .await?
            .status(),
        204
    );
    refused_soon(&second, &laptop_tokens.access_token).await?;
    assert_eq!(
        second
            .get("/v1/devices", &phone_tokens.access_token)
            .await?
            .status(),
        200
    );

    // The phone logs out through the first node: the same.
    assert_eq!(
        first
            .delete("/v1/logins/current", &phone_tokens.access_token)
            .await?
            .status(),
        204
    );
    refused_soon(&second, &phone_tokens.access_token).await?;
    Ok(())
}

/// Asks `app` with `token` until it answers 401, for at most a second.
async fn refused_soon(app: &TestApp, token: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let status = app.get("/v1/devices", token).await?.status();
        if status == 401 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "still answered {status} a second after the login ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
