//! What a notification extension costs: `Client::notifications` run in a
//! process of its own — `hearth-extension`, a binary that links the SDK and
//! nothing else, started as iOS starts a Notification Service Extension
//! beside the app — on a sealed data directory, through a slow link, with
//! five circles of fifty new messages each. The child opens the directory
//! with its key, makes the one call, and reports the call's wall time and
//! its own peak resident memory (`VmHWM`); the parent adds the requests the
//! server counted and the process's time from start to exit.

use anyhow::{Context as _, Result, bail};
use hearth_client::Client;
use hearth_tests::clients::{data_dirs, join};
use hearth_tests::slow_link::SlowLink;
use hearth_tests::{Db, TestApp};
use secrecy::SecretBox;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Circles, and new messages in each, waiting when the push comes.
const CIRCLES: usize = 5;
const PER_CIRCLE: usize = 50;

/// The budgets of the notification issue.
const BUDGET_MIB: f64 = 16.0;
const BUDGET_MS: f64 = 2000.0;

/// What one run of the child reported.
#[derive(Debug)]
pub struct Look {
    /// Notifications returned.
    pub items: u64,
    /// Whether every circle was read to its end.
    pub complete: bool,
    /// The call's wall time, milliseconds.
    pub call_ms: f64,
    /// Start to exit of the process, milliseconds.
    pub process_ms: f64,
    /// Peak resident memory, MiB.
    pub peak_mib: f64,
    /// Anonymous resident memory at the end (heap, stacks), MiB.
    pub anon_mib: f64,
    /// HTTP requests the server counted.
    pub requests: f64,
}

/// Runs the child once against `server`; what it and the server report.
async fn look(app: &TestApp, server: &str, dir: &std::path::Path, key: &str) -> Result<Look> {
    let before = app.counter("hearth_http_requests_total").await?;
    let started = Instant::now();
    let exe = std::env::current_exe()?.with_file_name("hearth-extension");
    if !exe.exists() {
        bail!(
            "{} is not built: cargo build -p hearth-bench --bins",
            exe.display()
        );
    }
    let mut child = Command::new(exe)
        .arg(server)
        .arg(dir)
        .arg("10000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("the child's stdin")?
        .write_all(key.as_bytes())?;
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let process_ms = started.elapsed().as_secs_f64() * 1e3;
    if !output.status.success() {
        bail!("the extension process failed ({})", output.status);
    }
    let after = app.counter("hearth_http_requests_total").await?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let number = |field: &str| report[field].as_f64().unwrap_or(f64::NAN);
    Ok(Look {
        items: report["items"].as_u64().unwrap_or(0),
        complete: report["complete"].as_bool().unwrap_or(false),
        call_ms: number("call_ms"),
        process_ms,
        peak_mib: number("peak_kib") / 1024.0,
        anon_mib: number("anon_kib") / 1024.0,
        // Less the read of the counter itself.
        requests: after - before - 1.0,
    })
}

/// Five circles with fifty messages each waiting for Sam, whose phone is
/// `one_way` away; the extension looks twice (the second finds nothing).
pub async fn measure(one_way: Duration) -> Result<(Look, Look)> {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let link = SlowLink::start(&app.address, one_way).await?;
    let dirs = data_dirs(2)?;
    let anna = Client::open(&app.address, dirs[0].path()).await?;
    anna.register(None).await?;
    anna.set_display_name("Anna").await?;
    let key_bytes: [u8; 32] = hearth_tests::rand_bytes();
    let key: String = key_bytes.iter().map(|b| format!("{b:02x}")).collect();
    {
        let sam = Client::open_encrypted(
            &app.address,
            dirs[1].path(),
            SecretBox::new(Box::new(key_bytes)),
        )
        .await?;
        sam.register(None).await?;
        sam.set_display_name("Sam").await?;
        let mut circles = Vec::new();
        for i in 0..CIRCLES {
            let circle = anna.create_circle().await?;
            anna.set_title(&circle, &format!("Circle {}", i + 1))
                .await?;
            join(&anna, &sam, &circle).await?;
            circles.push(circle);
        }
        sam.sync_all().await?;
        anna.sync_all().await?;
        for circle in &circles {
            for n in 0..PER_CIRCLE {
                anna.send_text(circle, &format!("see you Thursday ({n})"))
                    .await?;
            }
        }
    }
    let first = look(&app, &link.address, dirs[1].path(), &key).await?;
    let second = look(&app, &link.address, dirs[1].path(), &key).await?;
    app.stop().await?;
    Ok((first, second))
}

/// Prints the figures, and fails when the budgets are not met.
pub async fn print(one_way: Duration) -> Result<()> {
    let (first, second) = measure(one_way).await?;
    hearth_tests::drop_created_databases().await;
    let rtt = 2 * one_way.as_millis();
    println!(
        "notifications() in its own process (sealed store, {rtt} ms round trip, SQLite, in-process server):"
    );
    println!();
    println!(
        "| wake | items | complete | requests | call | process start to exit | peak resident | anonymous at exit |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (what, l) in [
        (format!("{CIRCLES} circles × {PER_CIRCLE} new"), &first),
        ("again, nothing new".to_owned(), &second),
    ] {
        println!(
            "| {what} | {} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.1} MiB | {:.1} MiB |",
            l.items, l.complete, l.requests, l.call_ms, l.process_ms, l.peak_mib, l.anon_mib
        );
    }
    println!();
    let expected = (CIRCLES * PER_CIRCLE) as u64;
    if first.items != expected || second.items != 0 || !first.complete {
        bail!(
            "expected {expected} items then none, got {} then {}",
            first.items,
            second.items
        );
    }
    let within = first.peak_mib <= BUDGET_MIB && first.call_ms <= BUDGET_MS;
    println!(
        "budget ≤ {BUDGET_MIB} MiB and ≤ {BUDGET_MS} ms: {}{}",
        if within { "met" } else { "NOT met" },
        if cfg!(debug_assertions) {
            " (a debug build; the budget holds release builds: --release)"
        } else {
            ""
        }
    );
    if !within && !cfg!(debug_assertions) {
        bail!("over budget (a release build is held to it)");
    }
    Ok(())
}
