//! CPU time from `/proc`, split between the server and the load generator
//! that share this process, plus PostgreSQL's server processes.
//!
//! The load generator runs on its own runtime whose threads are named
//! `load`; every other thread of the process (actix workers, the server's
//! runtime, SQLite's worker threads) is the server. Linux counts in clock
//! ticks of 1/100 s (`USER_HZ`), so figures are meaningful over seconds.

use std::fs;

/// Clock ticks per second of `/proc`'s `utime`/`stime` (Linux's `USER_HZ`).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds used so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// This process minus the load generator's threads.
    pub server: f64,
    /// Every process named `postgres` (the throwaway cluster's).
    pub postgres: f64,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            server: self.server - earlier.server,
            postgres: self.postgres - earlier.postgres,
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

fn ticks_where(dir: &str, keep: impl Fn(&str) -> bool) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            name.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
            stat(&format!("{dir}/{name}/stat"))
        })
        .filter(|(name, _)| keep(name))
        .map(|(_, ticks)| ticks)
        .sum()
}

/// CPU used so far by the server and by PostgreSQL.
pub fn sample() -> Cpu {
    let process = stat("/proc/self/stat").map_or(0, |(_, ticks)| ticks);
    let load = ticks_where("/proc/self/task", |name| name.starts_with("load"));
    let postgres = ticks_where("/proc", |name| name == "postgres");
    Cpu {
        server: process.saturating_sub(load) as f64 / TICKS_PER_SEC,
        postgres: postgres as f64 / TICKS_PER_SEC,
    }
}
