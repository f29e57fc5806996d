//! API fuzzing from the served OpenAPI document with Schemathesis (PyPI,
//! installed by `scripts/test` beside the other checkers): generated and
//! mutated requests against the real server, authenticated as a real
//! device, in its coverage, fuzzing and stateful phases. No 5xx; every answer
//! matches the document (status, body schema, content type, headers, `Allow`
//! on 405); invalid input is refused; no route answers without the
//! authentication it declares.
//!
//! Not checked: `positive_data_acceptance` (that every schema-valid request is
//! accepted) — the document does not spell every rule the server enforces,
//! key and signature lengths among them, so some schema-valid bodies are
//! refused with 400 or 422, as they should be; and
//! `ensure_resource_availability` (that what a link leads to exists right
//! after creation) — a new circle rightly has no GroupInfo or snapshot yet. Logging out and
//! deleting the account are left out: either would end the session the run
//! uses (both have their own scenarios).

use anyhow::{Result, bail};
use hearth_tests::{Db, TestApp, on_both_databases};
use std::path::PathBuf;

on_both_databases!(schemathesis_finds_no_server_error_and_no_answer_off_the_document);

/// Examples per operation: `API_FUZZ_EXAMPLES` for a longer run (README).
fn examples() -> String {
    std::env::var("API_FUZZ_EXAMPLES").unwrap_or_else(|_| "25".into())
}

/// Schemathesis's command, beside the checkers' Python.
fn schemathesis() -> Result<Option<PathBuf>> {
    let found = std::env::var_os("TEST_CHECKER_PYTHON")
        .map(PathBuf::from)
        .and_then(|python| python.parent().map(|bin| bin.join("st")))
        .filter(|st| st.exists());
    match found {
        Some(st) => Ok(Some(st)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            bail!("CI=true but Schemathesis is not installed (scripts/test installs it)")
        }
        None => {
            eprintln!("SKIPPED Schemathesis: run scripts/test, which installs it");
            Ok(None)
        }
    }
}

async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document(db: Db) -> Result<()> {
    let Some(st) = schemathesis()? else {
        return Ok(());
    };
    // With a video server configured, so calls answer 200, not 503.
    let app = TestApp::spawn_with(db, |c| {
        c.video.url = Some("wss://sfu.localhost".into());
        c.video.api_key = Some("devkey".into());
        c.video.api_secret = Some(secrecy::SecretString::from(
            "hearth-test-secret-0123456789abcdef",
        ));
    })
    .await?;
    let (_, login) = app.signed_in().await?;
    let report = tempfile::tempdir()?;
    // Its run cache goes into the working directory: the temporary one,
    // not the checkout.
    let output = tokio::process::Command::new(st)
        .current_dir(report.path())
        .arg("run")
        .arg(app.url("/v1/openapi.json"))
        .args([
            "-H",
            &format!("Authorization: Bearer {}", login.access_token),
        ])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,ensure_resource_availability",
        ])
        .args(["--exclude-name", "DELETE /v1/logins/current"])
        .args(["--exclude-name", "DELETE /v1/account"])
        // One worker: with two, Schemathesis 4.32.5 now and then fails
        // inside itself (a KeyError in its coverage phase), not in the API.
        .args(["--max-examples", &examples(), "--workers", "1"])
        .args(["--seed", "20261124"])
        .args(["--request-timeout", "10", "--no-color"])
        .arg("--report-dir")
        .arg(report.path())
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "Schemathesis found failures:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(text.contains("passed"), "Schemathesis ran: {text}");
    // The run's own session is still good: nothing it did ended it.
    assert_eq!(
        app.get("/v1/devices", &login.access_token).await?.status(),
        200
    );
    Ok(())
}
