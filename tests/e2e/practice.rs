//! A practice's own server: only facilitators the operator enrolled open
//! circles, and every account holds at most what the server allows.

use anyhow::{Context as _, Result, bail, ensure};
use hearth_client::{Client, ClientError};
use hearth_protocol::ErrorCode;
use hearth_server::config::FacilitatorPolicy;
use hearth_tests::clients::{data_dirs, join};
use hearth_tests::process::admin;
use hearth_tests::{Db, TestApp, on_both_databases};

on_both_databases!(a_practice_enrols_its_facilitators_and_holds_each_account_to_its_quotas);

/// `code` is the server's refusal.
fn refused(result: Result<impl std::fmt::Debug, ClientError>, code: ErrorCode) -> Result<()> {
    match result {
        Err(ClientError::Api { status: 403, body }) if body.code == code => Ok(()),
        other => bail!("expected 403 {code}, got {other:?}"),
    }
}

/// What `hearth-server admin <args>` printed on stdout; it must succeed.
async fn operator(app: &TestApp, args: &[&str]) -> Result<String> {
    let done = admin(&app.db, args).await?;
    ensure!(
        done.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    Ok(String::from_utf8(done.stdout)?)
}

/// The practice's server lets only enrolled facilitators open circles, and
/// allows each account two circles, two devices and two outstanding
/// invites. Dana registers and cannot open a circle; the operator mints a
/// facilitator code (`hearth-server admin facilitator-code` prints the code
/// and nothing else on stdout), Dana enrols with it (a second use is
/// refused) and opens two circles, not a third; mints two invites, not a
/// third; links a second device, not a third. Sam, not enrolled, joins by
/// Dana's invite and cannot open a circle of his own. The operator's list
/// names Dana's account (an opaque id) and nothing else; the figures count
/// the instance. Revoking Dana's enrolment leaves her circles, and she
/// opens no new one.
async fn a_practice_enrols_its_facilitators_and_holds_each_account_to_its_quotas(
    db: Db,
) -> Result<()> {
    let app = TestApp::spawn_with(db, |config| {
        config.accounts.facilitators = FacilitatorPolicy::Enrolled;
        config.accounts.max_circles = 2;
        config.accounts.max_devices = 2;
        config.accounts.max_invites = 2;
    })
    .await?;
    let dirs = data_dirs(4)?;
    let dana = Client::open(&app.address, dirs[0].path()).await?;
    dana.register(None).await?;
    let status = dana.facilitator_status().await?;
    assert!(status.enrolment_required && status.enrolled_at.is_none());
    refused(dana.create_circle().await, ErrorCode::NotEnrolled)?;

    let code = operator(&app, &["facilitator-code"]).await?;
    let code = code.trim();
    ensure!(code.starts_with("hfc_") && !code.contains('\n'), "{code:?}");
    let enrolled = dana.enrol_as_facilitator(code).await?;
    enrolled.enrolled_at.context("enrolled")?;
    refused(
        dana.enrol_as_facilitator(code).await,
        ErrorCode::FacilitatorCodeInvalid,
    )?;
    refused(
        dana.enrol_as_facilitator("hfc_made_up").await,
        ErrorCode::FacilitatorCodeInvalid,
    )?;

    let circle = dana.create_circle().await?;
    dana.create_circle().await?;
    refused(dana.create_circle().await, ErrorCode::QuotaExceeded)?;

    let sam = Client::open(&app.address, dirs[1].path()).await?;
    sam.register(None).await?;
    join(&dana, &sam, &circle).await?;
    refused(sam.create_circle().await, ErrorCode::NotEnrolled)?;
    // Sam's invite is spent; two more are outstanding, then no third.
    dana.create_invite(&circle).await?;
    dana.create_invite(&circle).await?;
    refused(dana.create_invite(&circle).await, ErrorCode::QuotaExceeded)?;

    let link = dana.link_token().await?;
    let laptop = Client::open(&app.address, dirs[2].path()).await?;
    laptop.register(Some(&link)).await?;
    refused(dana.link_token().await, ErrorCode::QuotaExceeded)?;

    let account = dana.account_id().await?.context("Dana's account")?;
    let listed = operator(&app, &["facilitators"]).await?;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(lines[0].starts_with(&account.to_string()), "{listed}");
    assert!(!listed.contains(code), "the list never shows a code");
    let figures = operator(&app, &["figures"]).await?;
    for (name, value) in [
        ("accounts", 2),
        ("devices", 3),
        ("facilitators", 1),
        ("circles", 2),
    ] {
        assert!(
            figures
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [name, &value.to_string()]),
            "{name} {value} in {figures}"
        );
    }
    assert!(
        !figures.contains(&account.to_string()),
        "figures name no one"
    );

    operator(&app, &["revoke-facilitator", &account.to_string()]).await?;
    assert_eq!(dana.facilitator_status().await?.enrolled_at, None);
    assert_eq!(dana.circles().await?.len(), 2, "her circles stay");
    dana.send_text(&circle, "still here").await?;
    refused(dana.create_circle().await, ErrorCode::NotEnrolled)?;
    let again = admin(&app.db, &["revoke-facilitator", &account.to_string()]).await?;
    assert!(!again.status.success(), "revoking twice says so");
    Ok(())
}
