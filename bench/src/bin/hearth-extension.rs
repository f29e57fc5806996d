//! `hearth-extension <server> <dir> <within ms>`: what a phone's
//! notification extension does on a wake, in a process that links the SDK
//! and nothing else — open the sealed data directory with its key (64 hex
//! digits on stdin), `notifications()`, exit — for the benchmark
//! (`hearth-bench --notifications`) to measure. Prints one JSON line: the
//! items, whether every circle was read, the call's wall time and the
//! process's peak resident memory.

use anyhow::{Context as _, Result, bail};
use hearth_client::Client;
use secrecy::SecretBox;
use std::io::Read as _;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [server, dir, within] = args.as_slice() else {
        bail!("hearth-extension <server> <dir> <within ms>, the key on stdin");
    };
    let within = Duration::from_millis(within.parse()?);
    let mut hex = String::new();
    std::io::stdin().read_to_string(&mut hex)?;
    let key = SecretBox::new(Box::new(parse_key(hex.trim())?));
    // The runtime the FFI crate runs the SDK on, as an app's extension
    // would (two workers and Tokio's blocking pool).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (found, call_ms) = runtime.block_on(async {
        let started = Instant::now();
        let client = Client::open_encrypted(server, dir, key).await?;
        let found = client.notifications(within).await?;
        anyhow::Ok((found, started.elapsed().as_secs_f64() * 1e3))
    })?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = |field: &str| -> Result<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{field} in /proc/self/status"))
    };
    // Peak resident memory, and at the end its anonymous part (heap and
    // stacks: what iOS counts against an extension; the binary's own pages
    // are file-backed and shared).
    let (peak_kib, anon_kib) = (kib("VmHWM:")?, kib("RssAnon:")?);
    println!(
        "{}",
        serde_json::json!({
            "items": found.items.len(),
            "complete": found.complete,
            "call_ms": call_ms,
            "peak_kib": peak_kib,
            "anon_kib": anon_kib,
        })
    );
    Ok(())
}

fn parse_key(hex: &str) -> Result<[u8; 32]> {
    let mut key = [0u8; 32];
    if hex.len() != 64 {
        bail!("the key is 64 hex digits");
    }
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(key)
}
