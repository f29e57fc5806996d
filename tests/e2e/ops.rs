//! Operations: health, readiness, metrics, the API description, limits,
//! restarts, several nodes, and what reaches the logs.

use anyhow::Result;
use hearth_protocol::ErrorCode;
use hearth_protocol::auth::{DeviceList, LinkToken};
use hearth_server::config::Bucket;
use hearth_tests::{
    Db, TestApp, TestDb, b64, expect_error, on_both_databases, on_postgres, rand_bytes,
};
use serde_json::Value;

on_both_databases!(
    health_readiness_and_a_graceful_stop,
    metrics_name_routes_by_template_and_never_by_id,
    the_openapi_document_describes_every_endpoint_and_its_errors,
    oversized_bodies_get_413_and_lose_nothing,
    registration_and_login_are_rate_limited_per_address_and_per_device,
    a_generated_signing_key_survives_a_restart,
    signing_keys_are_wrapped_at_rest_once_a_wrapping_key_is_set,
);

on_postgres!(
    two_nodes_on_one_postgres_share_keys_and_logins,
    readiness_fails_when_the_database_goes_away,
    while_the_database_is_away_requests_are_told_to_retry_within_seconds,
    a_node_accepts_tokens_signed_by_a_key_another_node_added,
);

async fn health_readiness_and_a_graceful_stop(app: TestApp) -> Result<()> {
    let health: Value = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(health["status"], "ok");
    let ready = app.http.get(app.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await?;
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["push"], "off", "no push transport is configured");
    expect_error(
        app.http.get(app.url("/no/such/route")).send().await?,
        404,
        ErrorCode::NotFound,
    )
    .await?;
    expect_error(
        app.http.put(app.url("/healthz")).send().await?,
        405,
        ErrorCode::MethodNotAllowed,
    )
    .await?;

    let address = app.url("/healthz");
    let http = app.http.clone();
    let db = app.stop().await?;
    assert!(
        http.get(&address).send().await.is_err(),
        "the port is closed after stop"
    );
    // The database is intact and can be opened again.
    db.storage().await?.ping().await?;
    Ok(())
}

async fn metrics_name_routes_by_template_and_never_by_id(app: TestApp) -> Result<()> {
    let (sam, tokens) = app.signed_in().await?;
    app.delete(
        &format!("/v1/devices/{}", sam.device_id),
        &tokens.access_token,
    )
    .await?;
    let text = app.metrics().await?;
    assert!(text.contains("hearth_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/v1/devices/{device_id}\""), "{text}");
    assert!(text.contains("hearth_http_request_duration_seconds"));
    assert!(
        !text.contains(&sam.device_id.to_string()),
        "no id in any label"
    );
    assert!(!text.contains(&sam.account_id.to_string()));
    Ok(())
}

async fn the_openapi_document_describes_every_endpoint_and_its_errors(app: TestApp) -> Result<()> {
    let doc: Value = app
        .http
        .get(app.url("/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(doc["info"]["title"], "Hearth API");
    let text = doc.to_string();
    assert!(
        text.contains("docs/PROTOCOL.md"),
        "the description points outside implementers to the protocol"
    );
    assert!(
        !text.contains("[`"),
        "no dangling references to Rust items in the description"
    );
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let endpoints = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/v1/openapi.json"),
        ("post", "/v1/challenges"),
        ("post", "/v1/devices"),
        ("get", "/v1/devices"),
        ("delete", "/v1/devices/{device_id}"),
        ("post", "/v1/logins"),
        ("post", "/v1/logins/refresh"),
        ("delete", "/v1/logins/current"),
        ("post", "/v1/link-tokens"),
        ("delete", "/v1/account"),
        ("get", "/v1/account/facilitator"),
        ("post", "/v1/account/facilitator"),
        ("post", "/v1/key-packages"),
        ("get", "/v1/key-packages/count"),
        ("post", "/v1/key-packages/claim"),
        ("post", "/v1/circles"),
        ("get", "/v1/circles"),
        ("get", "/v1/circles/{circle_id}"),
        ("post", "/v1/circles/{circle_id}/commits"),
        ("post", "/v1/circles/{circle_id}/messages"),
        ("get", "/v1/circles/{circle_id}/messages"),
        ("post", "/v1/circles/{circle_id}/ack"),
        ("get", "/v1/circles/{circle_id}/group-info"),
        ("get", "/v1/circles/{circle_id}/snapshot"),
        ("put", "/v1/circles/{circle_id}/snapshot"),
        ("post", "/v1/circles/{circle_id}/call"),
        ("get", "/v1/push/services"),
        ("put", "/v1/devices/current/push"),
        ("get", "/v1/devices/current/push"),
        ("delete", "/v1/devices/current/push"),
        ("get", "/v1/welcomes"),
        ("delete", "/v1/welcomes/{welcome_id}"),
        ("post", "/v1/sync"),
        ("post", "/v1/circles/{circle_id}/invites"),
        ("get", "/v1/circles/{circle_id}/invites"),
        ("delete", "/v1/circles/{circle_id}/invites/{invite_id}"),
        ("post", "/v1/invites/redeem"),
        ("get", "/v1/circles/{circle_id}/join-requests"),
        (
            "delete",
            "/v1/circles/{circle_id}/join-requests/{join_request_id}",
        ),
        ("get", "/v1/stream"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        documented,
        endpoints.len(),
        "no endpoint more or less than the server serves"
    );
    for (method, path) in endpoints {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let responses = operation["responses"].as_object().expect("responses");
        // Probes answer their own body, also when not ready.
        let is_ops = ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"].contains(&path);
        if !is_ops {
            let errors: Vec<_> = responses
                .iter()
                .filter(|(status, _)| status.starts_with('4') || status.starts_with('5'))
                .collect();
            assert!(!errors.is_empty(), "{method} {path} documents its errors");
            for (status, response) in errors {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
        // The server really serves what the document says: never the
        // catch-all 404 for unknown routes.
        let url = app.url(
            &path
                .replace("{device_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{welcome_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{invite_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{join_request_id}", &uuid::Uuid::new_v4().to_string())
                .replace("{circle_id}", "AAAAAAAAAAAAAAAAAAAAAA"),
        );
        let response = app
            .http
            .request(method.to_uppercase().parse()?, url)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        assert!(
            status != 404 && status != 405,
            "{method} {path} is routed: {status} {body}"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    Ok(())
}

async fn oversized_bodies_get_413_and_lose_nothing(app: TestApp) -> Result<()> {
    let (sam, tokens) = app.signed_in().await?;
    let huge = format!("{{\"refresh_token\": \"{}\"}}", "x".repeat(300 * 1024));
    let response = app
        .http
        .post(app.url("/v1/logins/refresh"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await?;
    expect_error(response, 413, ErrorCode::PayloadTooLarge).await?;
    let list: DeviceList = app
        .get("/v1/devices", &tokens.access_token)
        .await?
        .json()
        .await?;
    assert_eq!(list.devices[0].device_id, sam.device_id);
    assert_eq!(
        app.refresh(&tokens.refresh_token).await?.status(),
        200,
        "the login survived"
    );
    Ok(())
}

async fn registration_and_login_are_rate_limited_per_address_and_per_device(db: Db) -> Result<()> {
    let app = TestApp::spawn_with(db, |c| {
        c.rate_limits.per_ip = Bucket {
            burst: 4,
            per_minute: 1,
        };
    })
    .await?;
    for _ in 0..4 {
        assert_eq!(
            app.http
                .post(app.url("/v1/challenges"))
                .send()
                .await?
                .status(),
            201
        );
    }
    let response = app.http.post(app.url("/v1/challenges")).send().await?;
    let retry: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    expect_error(response, 429, ErrorCode::RateLimited).await?;
    let response = app
        .register_raw(&ed25519_dalek::SigningKey::from_bytes(&rand_bytes()), None)
        .await;
    assert!(
        response.is_err(),
        "even the challenge for a registration is refused"
    );
    let db = app.stop().await?;

    // Per device: a guesser hammering one device is stopped even from many
    // addresses' worth of budget.
    let app = TestApp::start(db, |c| {
        c.rate_limits.per_device = Bucket {
            burst: 3,
            per_minute: 1,
        }
    })
    .await?;
    let (sam, _) = app.signed_in().await?; // one login spent
    let stranger = ed25519_dalek::SigningKey::from_bytes(&rand_bytes());
    for _ in 0..2 {
        expect_error(
            app.login_raw(&stranger, sam.device_id).await?,
            401,
            ErrorCode::Unauthorized,
        )
        .await?;
    }
    expect_error(
        app.login_raw(&sam.key, sam.device_id).await?,
        429,
        ErrorCode::RateLimited,
    )
    .await?;
    let (alex, _) = app.signed_in().await?;
    assert_ne!(
        alex.device_id, sam.device_id,
        "other devices are unaffected"
    );
    Ok(())
}

async fn a_generated_signing_key_survives_a_restart(db: Db) -> Result<()> {
    let test_db = TestDb::create(db).await?;
    let app = TestApp::start(test_db, |c| c.auth.signing_key = None).await?;
    let (_, tokens) = app.signed_in().await?;
    let db = app.stop().await?;
    let app = TestApp::start(db, |c| c.auth.signing_key = None).await?;
    assert_eq!(
        app.get("/v1/devices", &tokens.access_token).await?.status(),
        200,
        "same key after restart"
    );
    assert_eq!(
        app.refresh(&tokens.refresh_token).await?.status(),
        200,
        "logins persist"
    );
    Ok(())
}

async fn signing_keys_are_wrapped_at_rest_once_a_wrapping_key_is_set(db: Db) -> Result<()> {
    use secrecy::SecretString;
    // A server that has run for a while with its generated key in the clear.
    let app = TestApp::start(TestDb::create(db).await?, |c| c.auth.signing_key = None).await?;
    let (_, tokens) = app.signed_in().await?;
    let db = app.stop().await?;
    let plain = stored_signing_keys(&db).await?;
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].len(), 32, "a seed in the clear");

    // The operator sets a wrapping key: the stored seed is wrapped at start,
    // and tokens signed before still work.
    let wrapping = b64(&rand_bytes::<32>());
    let wrap = |key: &str| {
        let key = key.to_owned();
        move |c: &mut hearth_server::config::Config| {
            c.auth.signing_key = None;
            c.auth.key_wrapping_key = Some(SecretString::from(key));
        }
    };
    let app = TestApp::start(db, wrap(&wrapping)).await?;
    assert_eq!(
        app.get("/v1/devices", &tokens.access_token).await?.status(),
        200
    );
    let db = app.stop().await?;
    let wrapped = stored_signing_keys(&db).await?;
    assert_eq!(wrapped[0].len(), 60, "nonce, sealed seed, tag");
    assert!(!wrapped[0].windows(32).any(|w| w == plain[0].as_slice()));
    let dump = db.dump().await?.join("\n");
    assert!(
        !dump.contains(&hearth_tests::hex(&plain[0])),
        "the seed is nowhere"
    );

    // Without the wrapping key, or with another, the key ring does not load
    // (the server does not start), and says why.
    let storage = db.storage().await?;
    for (key, why) in [
        (None, "set auth.key_wrapping_key"),
        (Some(b64(&rand_bytes::<32>())), "does not unwrap"),
        (Some("short".to_owned()), "must be 32 bytes"),
    ] {
        let auth = hearth_server::config::AuthConfig {
            key_wrapping_key: key.map(SecretString::from),
            ..Default::default()
        };
        let refused =
            hearth_server::tokens::KeyRing::load(storage.as_ref(), &auth, hearth_server::now())
                .await;
        let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(why), "{why}: {error}");
    }
    storage.close().await;

    let app = TestApp::start(db, wrap(&wrapping)).await?;
    assert_eq!(
        app.get("/v1/devices", &tokens.access_token).await?.status(),
        200
    );
    Ok(())
}

/// The signing keys as the database holds them.
async fn stored_signing_keys(db: &TestDb) -> Result<Vec<Vec<u8>>> {
    use secrecy::ExposeSecret as _;
    let storage = db.storage().await?;
    let keys = storage.signing_keys().await?;
    storage.close().await;
    Ok(keys
        .iter()
        .map(|k| k.private_key.expose_secret().clone())
        .collect())
}

async fn two_nodes_on_one_postgres_share_keys_and_logins(db: Db) -> Result<()> {
    let (first, second) = TestApp::two_nodes(db, |c| c.auth.signing_key = None).await?;
    let (_, tokens) = first.signed_in().await?;
    assert_eq!(
        second
            .get("/v1/devices", &tokens.access_token)
            .await?
            .status(),
        200
    );
    let renewed: hearth_protocol::auth::LoginTokens =
        second.refresh(&tokens.refresh_token).await?.json().await?;
    assert_eq!(
        first
            .get("/v1/devices", &renewed.access_token)
            .await?
            .status(),
        200
    );
    expect_error(
        first.refresh(&tokens.refresh_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    Ok(())
}

async fn readiness_fails_when_the_database_goes_away(app: TestApp) -> Result<()> {
    assert_eq!(app.http.get(app.url("/readyz")).send().await?.status(), 200);
    let name = app.db.postgres_name().expect("a PostgreSQL database");
    let admin = std::env::var(hearth_tests::PG_ENV)?;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    let response = app.http.get(app.url("/readyz")).send().await?;
    assert_eq!(response.status(), 503);
    let ready: Value = response.json().await?;
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(
        ready["database"], "unreachable",
        "it says which part failed"
    );
    let alive = app.http.get(app.url("/healthz")).send().await?;
    assert_eq!(alive.status(), 200, "the process itself is alive");
    Ok(())
}

/// PostgreSQL goes away under a running node (here: its database dropped,
/// every connection cut). A phone's send, sync and challenge are answered
/// `503 unavailable` with `Retry-After` — "try again shortly", which the SDK
/// retries and keeps in the outbox — within seconds, never `500 internal`
/// (a bug, as far as a client can tell) nor after the phone gave up.
async fn while_the_database_is_away_requests_are_told_to_retry_within_seconds(
    app: TestApp,
) -> Result<()> {
    let (_, tokens) = app.signed_in().await?;
    let name = app.db.postgres_name().expect("a PostgreSQL database");
    let admin = std::env::var(hearth_tests::PG_ENV)?;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;

    let sync = serde_json::json!({ "cursors": [], "welcomes_done": [] });
    let requests = [
        app.http.post(app.url("/v1/challenges")),
        app.http
            .post(app.url("/v1/sync"))
            .bearer_auth(&tokens.access_token)
            .json(&sync),
        app.http
            .get(app.url("/v1/devices"))
            .bearer_auth(&tokens.access_token),
    ];
    for request in requests {
        let started = std::time::Instant::now();
        let response = request.send().await?;
        let took = started.elapsed();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        expect_error(response, 503, ErrorCode::Unavailable).await?;
        assert_eq!(retry_after.as_deref(), Some("5"), "when to try again");
        assert!(
            took < std::time::Duration::from_secs(5),
            "answered in {took:?}"
        );
    }
    Ok(())
}

async fn a_node_accepts_tokens_signed_by_a_key_another_node_added(db: Db) -> Result<()> {
    // Each node is configured with its own key (a rotation in progress).
    let (old, new) = TestApp::two_nodes(db, |_| {}).await?;
    assert_ne!(old.signing_seed, new.signing_seed);
    let (_, on_new) = new.signed_in().await?;
    let (_, on_old) = old.signed_in().await?;
    assert_eq!(
        old.get("/v1/devices", &on_new.access_token).await?.status(),
        200,
        "old node learns the new key"
    );
    assert_eq!(
        new.get("/v1/devices", &on_old.access_token).await?.status(),
        200,
        "new node knows the old key"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_carry_no_ids_tokens_or_keys() -> Result<()> {
    let captured = hearth_tests::captured_logs();
    let app = TestApp::spawn(Db::Sqlite).await?;
    let (sam, tokens) = app.signed_in().await?;
    let link: LinkToken = app
        .post("/v1/link-tokens", &tokens.access_token)
        .await?
        .json()
        .await?;
    let laptop = app
        .register_key(
            ed25519_dalek::SigningKey::from_bytes(&rand_bytes()),
            Some(&link.link_token),
        )
        .await?;
    let renewed: hearth_protocol::auth::LoginTokens =
        app.refresh(&tokens.refresh_token).await?.json().await?;
    app.refresh(&tokens.refresh_token).await?; // a replay, which is logged
    app.delete(
        &format!("/v1/devices/{}", laptop.device_id),
        &renewed.access_token,
    )
    .await?;
    app.stop().await?;

    let logs = String::from_utf8(captured.bytes())?;
    assert!(
        logs.contains("request finished"),
        "logs were captured: {logs}"
    );
    assert!(logs.contains("device registered"));
    let secrets = [
        sam.device_id.to_string(),
        sam.account_id.to_string(),
        laptop.device_id.to_string(),
        tokens.access_token.clone(),
        tokens.refresh_token.clone(),
        renewed.refresh_token.clone(),
        link.link_token.clone(),
        b64(sam.key.verifying_key().as_bytes()),
    ];
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret or raw id reached the logs"
        );
    }
    Ok(())
}
