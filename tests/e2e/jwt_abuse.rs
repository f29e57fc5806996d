//! RFC 8725 abuse suite: every malformed, mis-signed, mis-addressed or stale
//! access token is refused with 401. The test knows the server's signing key,
//! so it can forge tokens that are wrong in exactly one way; a correctly
//! forged token is accepted, which proves each refusal is for its one defect.

use anyhow::Result;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_protocol::ErrorCode;
use hearth_server::tokens::kid_for;
use hearth_tests::{TestApp, b64, expect_error, on_both_databases, rand_bytes};
use serde_json::{Value, json};

on_both_databases!(every_abused_access_token_is_refused);

fn encode_part(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

/// A compact JWS with any header and claims, signed with Ed25519.
fn forge(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let signing_input = format!("{}.{}", encode_part(header), encode_part(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&signature.to_bytes()))
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", encode_part(header), encode_part(claims))
}

fn claims_of(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).unwrap_or_default();
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

fn with(base: &Value, key: &str, value: Value) -> Value {
    let mut v = base.clone();
    v[key] = value;
    v
}

fn without(base: &Value, key: &str) -> Value {
    let mut v = base.clone();
    v.as_object_mut().expect("object").remove(key);
    v
}

async fn every_abused_access_token_is_refused(app: TestApp) -> Result<()> {
    let (sam, tokens) = app.signed_in().await?;
    let (alex, alex_tokens) = app.signed_in().await?;
    let server_key = SigningKey::from_bytes(&app.signing_seed);
    let public = server_key.verifying_key().to_bytes();
    let kid = kid_for(&public);
    let now = hearth_server::now();

    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let claims = claims_of(&tokens.access_token)?;
    assert_eq!(claims["sub"], sam.device_id.to_string());

    // The control: a token forged exactly as the server makes them is accepted.
    let control = forge(&header, &claims, &server_key);
    assert_eq!(
        app.get("/v1/devices", &control).await?.status(),
        200,
        "control token"
    );

    let attacker = SigningKey::from_bytes(&rand_bytes());
    let (h, c, s) = (&header, &claims, &server_key);
    let hs256 = |secret: &[u8]| {
        let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        hs.kid = Some(kid.clone());
        hs.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&hs, c, &jsonwebtoken::EncodingKey::from_secret(secret))
            .expect("HS256")
    };
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let mut attacks: Vec<(&str, String)> = vec![
        ("alg none", unsigned(&with(h, "alg", json!("none")), c)),
        ("alg None", unsigned(&with(h, "alg", json!("None")), c)),
        ("alg NONE", unsigned(&with(h, "alg", json!("NONE")), c)),
        ("alg nOnE", unsigned(&with(h, "alg", json!("nOnE")), c)),
        (
            "alg none, signed anyway",
            forge(&with(h, "alg", json!("none")), c, s),
        ),
        ("HS256 keyed with the raw public key", hs256(&public)),
        (
            "HS256 keyed with the base64 public key",
            hs256(b64(&public).as_bytes()),
        ),
        ("signature stripped", format!("{}.{}.", parts[0], parts[1])),
        (
            "signature part missing",
            format!("{}.{}", parts[0], parts[1]),
        ),
        (
            "signature of another token",
            format!(
                "{}.{}.{}",
                parts[0],
                encode_part(&with(c, "sub", json!(alex.device_id.to_string()))),
                parts[2]
            ),
        ),
        (
            "unknown kid",
            forge(&with(h, "kid", json!("no-such-key")), c, s),
        ),
        (
            "path in kid",
            forge(&with(h, "kid", json!("../../../../dev/null")), c, s),
        ),
        (
            "SQL in kid",
            forge(&with(h, "kid", json!("x' OR '1'='1")), c, s),
        ),
        ("empty kid", forge(&with(h, "kid", json!("")), c, s)),
        ("no kid", forge(&without(h, "kid"), c, s)),
        ("attacker's key under our kid", forge(h, c, &attacker)),
        (
            "attacker's key embedded as jwk",
            forge(
                &with(
                    h,
                    "jwk",
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64(attacker.verifying_key().as_bytes())}),
                ),
                c,
                &attacker,
            ),
        ),
        (
            "expired beyond leeway",
            forge(
                h,
                &with(&with(c, "exp", json!(now - 120)), "iat", json!(now - 1000)),
                s,
            ),
        ),
        ("no exp", forge(h, &without(c, "exp"), s)),
        (
            "exp as a string",
            forge(h, &with(c, "exp", json!((now + 300).to_string())), s),
        ),
        ("no iat", forge(h, &without(c, "iat"), s)),
        (
            "issued in the future",
            forge(
                h,
                &with(&with(c, "iat", json!(now + 3600)), "exp", json!(now + 4000)),
                s,
            ),
        ),
        (
            "not yet valid",
            forge(h, &with(c, "nbf", json!(now + 3600)), s),
        ),
        (
            "wrong aud",
            forge(h, &with(c, "aud", json!("someone-else")), s),
        ),
        ("no aud", forge(h, &without(c, "aud"), s)),
        (
            "wrong iss",
            forge(h, &with(c, "iss", json!("https://evil.example")), s),
        ),
        ("no iss", forge(h, &without(c, "iss"), s)),
        ("typ JWT", forge(&with(h, "typ", json!("JWT")), c, s)),
        ("no typ", forge(&without(h, "typ"), c, s)),
        (
            "another device's sub on this login",
            forge(h, &with(c, "sub", json!(alex.device_id.to_string())), s),
        ),
        (
            "a made-up login",
            forge(
                h,
                &with(c, "sid", json!(uuid::Uuid::new_v4().to_string())),
                s,
            ),
        ),
        (
            "sub that is not an id",
            forge(h, &with(c, "sub", json!("admin")), s),
        ),
        ("the refresh token", tokens.refresh_token.clone()),
        ("garbage", "not.a.jwt".into()),
        ("empty", String::new()),
    ];
    attacks.push(("four parts", format!("{}.x", tokens.access_token)));

    for (what, token) in &attacks {
        let response = app.get("/v1/devices", token).await?;
        assert_eq!(response.status(), 401, "{what} must be refused");
        expect_error(response, 401, ErrorCode::Unauthorized).await?;
    }

    // Not a bearer token at all.
    let basic = app
        .http
        .get(app.url("/v1/devices"))
        .basic_auth("sam", Some("pw"))
        .send()
        .await?;
    expect_error(basic, 401, ErrorCode::Unauthorized).await?;
    let none = app.http.get(app.url("/v1/devices")).send().await?;
    expect_error(none, 401, ErrorCode::Unauthorized).await?;

    // A token of a revoked device, then a token of a deleted account.
    assert_eq!(
        app.get("/v1/devices", &alex_tokens.access_token)
            .await?
            .status(),
        200
    );
    app.delete(
        &format!("/v1/devices/{}", alex.device_id),
        &alex_tokens.access_token,
    )
    .await?;
    expect_error(
        app.get("/v1/devices", &alex_tokens.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    assert_eq!(app.delete("/v1/account", &control).await?.status(), 204);
    expect_error(
        app.get("/v1/devices", &tokens.access_token).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    expect_error(
        app.get("/v1/devices", &control).await?,
        401,
        ErrorCode::Unauthorized,
    )
    .await?;
    Ok(())
}
