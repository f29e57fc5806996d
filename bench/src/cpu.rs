//! CPU time from `/proc`, split between the server and the load generator
//! that share this process, plus PostgreSQL's server processes.
//!
//! The load generator runs on its own runtime whose threads are named
//! `load`; every other thread of the process (actix workers, the server's
//! runtime, SQLite's worker threads) is the server. Linux counts in clock
//! ticks of 1/100 s (`USER_HZ`), so figures are meaningful over seconds.

use std::collections::HashMap;
use std::fs;

/// Clock ticks per second of `/proc`'s `utime`/`stime` (Linux's `USER_HZ`).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU used so far.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// This process minus the load generator's threads, in ticks.
    server: u64,
    /// Each process named `postgres` (the throwaway cluster's), by pid.
    postgres: HashMap<String, u64>,
}

/// CPU seconds used between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Used {
    /// By the server.
    pub server: f64,
    /// By PostgreSQL: processes alive at the end (a connection that closed
    /// in between is missed, one that opened counts from its start).
    pub postgres: f64,
}

impl Sample {
    /// What was used since `earlier`.
    pub fn since(&self, earlier: &Sample) -> Used {
        let postgres: u64 = self
            .postgres
            .iter()
            .map(|(pid, ticks)| {
                ticks.saturating_sub(earlier.postgres.get(pid).copied().unwrap_or(0))
            })
            .sum();
        Used {
            server: self.server.saturating_sub(earlier.server) as f64 / TICKS_PER_SEC,
            postgres: postgres as f64 / TICKS_PER_SEC,
        }
    }
}

/// `(name, utime + stime)` of a `/proc/.../stat` file.
fn stat(path: &str) -> Option<(String, u64)> {
    let text = fs::read_to_string(path).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// `(pid, ticks)` of every process or thread in `dir` whose name passes.
fn ticks_where(dir: &str, keep: impl Fn(&str) -> bool) -> HashMap<String, u64> {
    let Ok(entries) = fs::read_dir(dir) else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.to_owned();
            pid.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
            let (name, ticks) = stat(&format!("{dir}/{pid}/stat"))?;
            keep(&name).then_some((pid, ticks))
        })
        .collect()
}

/// CPU used so far by the server and by PostgreSQL.
pub fn sample() -> Sample {
    let process = stat("/proc/self/stat").map_or(0, |(_, ticks)| ticks);
    let load: u64 = ticks_where("/proc/self/task", |name| name.starts_with("load"))
        .values()
        .sum();
    Sample {
        server: process.saturating_sub(load),
        postgres: ticks_where("/proc", |name| name == "postgres"),
    }
}

/// CPU seconds another process has used so far.
pub fn process(pid: u32) -> anyhow::Result<f64> {
    let (_, ticks) =
        stat(&format!("/proc/{pid}/stat")).ok_or_else(|| anyhow::anyhow!("no /proc/{pid}/stat"))?;
    Ok(ticks as f64 / TICKS_PER_SEC)
}
