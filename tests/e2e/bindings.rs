//! The generated bindings, used as apps use them, against the real server:
//! a facilitator in Python and a member in Kotlin on the JVM create a
//! circle, invite, join with a note, approve, write both ways, hear a live
//! event through a listener, schedule and answer a session series, share a
//! call's media keys, branch on a refusal's stable code, and — as an Android
//! push worker would, through `clients/ffi/examples/HearthWake.kt` — turn a
//! wake into the notification "Alice: see you Thursday", once, and into the
//! placeholder while the key store is locked
//! (`clients/ffi/tests/facilitator.py`, `clients/ffi/tests/Member.kt`).
//!
//! `scripts/test` generates the bindings (`scripts/bindings`) and installs
//! the Kotlin compiler and JNA; it passes them as `FFI_BINDINGS_DIR`,
//! `KOTLIN_HOME` and `JNA_JAR`. Without them the scenario is skipped, and
//! under CI=true it fails.

use anyhow::{Context as _, Result, bail};
use hearth_tests::{Db, TestApp};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

struct Toolchain {
    bindings: PathBuf,
    kotlin: PathBuf,
    jna: PathBuf,
}

fn toolchain() -> Result<Option<Toolchain>> {
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    match (var("FFI_BINDINGS_DIR"), var("KOTLIN_HOME"), var("JNA_JAR")) {
        (Some(bindings), Some(kotlin), Some(jna)) => Ok(Some(Toolchain {
            bindings,
            kotlin,
            jna,
        })),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            bail!(
                "CI=true but FFI_BINDINGS_DIR, KOTLIN_HOME or JNA_JAR is unset (scripts/test sets them)"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED the bindings scenario: run scripts/test, which generates the bindings"
            );
            Ok(None)
        }
    }
}

fn sources() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/ffi/tests")
}

/// Compiles the generated Kotlin and the member program into a jar.
async fn compile_member(tools: &Toolchain, out: &Path) -> Result<PathBuf> {
    let jar = out.join("member.jar");
    let lib = tools.kotlin.join("lib");
    let classpath = format!(
        "{}:{}",
        tools.jna.display(),
        lib.join("kotlinx-coroutines-core-jvm.jar").display()
    );
    let compiled = tokio::process::Command::new(tools.kotlin.join("bin/kotlinc"))
        .arg(
            tools
                .bindings
                .join("kotlin/uniffi/hearth_ffi/hearth_ffi.kt"),
        )
        .arg(sources().join("Member.kt"))
        .arg(sources().join("../examples/HearthWake.kt"))
        .args(["-nowarn", "-cp", &classpath, "-d"])
        .arg(&jar)
        .output()
        .await
        .context("running kotlinc")?;
    if !compiled.status.success() {
        bail!(
            "kotlinc failed:\n{}{}",
            String::from_utf8_lossy(&compiled.stdout),
            String::from_utf8_lossy(&compiled.stderr)
        );
    }
    Ok(jar)
}

#[tokio::test]
async fn a_python_facilitator_and_a_kotlin_member_meet_through_the_real_server() -> Result<()> {
    let Some(tools) = toolchain()? else {
        return Ok(());
    };
    let work = tempfile::tempdir()?;
    let jar = compile_member(&tools, work.path()).await?;
    let app = TestApp::spawn_with(Db::Sqlite, |c| {
        c.video.url = Some("wss://sfu.localhost".into());
        c.video.api_key = Some("devkey".into());
        c.video.api_secret = Some(secrecy::SecretString::from(
            "hearth-test-secret-0123456789abcdef",
        ));
    })
    .await?;
    let mailbox = work.path().join("mailbox");
    std::fs::create_dir(&mailbox)?;
    let python = std::env::var_os("TEST_CHECKER_PYTHON").unwrap_or_else(|| "python3".into());
    let facilitator = tokio::process::Command::new(python)
        .arg(sources().join("facilitator.py"))
        .arg(&app.address)
        .arg(work.path().join("alice"))
        .arg(&mailbox)
        .env("FFI_BINDINGS_DIR", &tools.bindings)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let lib = tools.kotlin.join("lib");
    let classpath = [
        jar,
        tools.jna.clone(),
        lib.join("kotlinx-coroutines-core-jvm.jar"),
        lib.join("kotlin-stdlib.jar"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(":");
    let member = tokio::process::Command::new("java")
        .arg(format!(
            "-Djna.library.path={}",
            tools.bindings.join("kotlin").display()
        ))
        .args(["-cp", &classpath, "MemberKt", &app.address])
        .arg(work.path().join("sam"))
        .arg(&mailbox)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let within = Duration::from_secs(180);
    let (facilitator, member) = tokio::time::timeout(
        within,
        futures_util::future::join(facilitator.wait_with_output(), member.wait_with_output()),
    )
    .await
    .context("the two apps did not finish within three minutes")?;
    let (facilitator, member) = (facilitator?, member?);
    let report = |name: &str, out: &std::process::Output| {
        format!(
            "{name} exited {}:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    if !facilitator.status.success() || !member.status.success() {
        bail!(
            "{}\n{}",
            report("facilitator (Python)", &facilitator),
            report("member (Kotlin)", &member)
        );
    }
    assert!(String::from_utf8_lossy(&facilitator.stdout).contains("facilitator (Python): ok"));
    assert!(String::from_utf8_lossy(&member.stdout).contains("member (Kotlin): ok"));
    Ok(())
}
