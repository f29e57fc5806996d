//! The real `hearth-server` binary as a child process, for what only a
//! separate process can show: what survives `SIGKILL`, and what a database
//! looks like after it.

use crate::{TestDb, b64};
use anyhow::{Context as _, Result, bail};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Where cargo put the server binary: `target/<profile>/hearth-server`,
/// beside the calling executable (a binary such as the bench) or in the
/// directory above it (a test, in `target/<profile>/deps/`). The server
/// crate's own integration test makes cargo build it with the suite.
pub fn server_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let beside = exe.parent().context("the executable has no directory")?;
    let candidates = [Some(beside), beside.parent()];
    candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join("hearth-server"))
        .find(|binary| binary.exists())
        .with_context(|| {
            format!(
                "no hearth-server beside {}: build it with `cargo build -p hearth-server` \
                 (scripts/test and scripts/bench do)",
                exe.display()
            )
        })
}

/// A running `hearth-server` process on a test database.
pub struct ServerProcess {
    child: Child,
    /// The data directory, when it is a small disk of the server's own.
    small_disk: Option<PathBuf>,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

impl ServerProcess {
    /// Starts the binary on `db`, signing access tokens with `signing_seed`
    /// (so tokens from an earlier server on the same database stay valid),
    /// and returns once it listens.
    pub async fn start(db: &TestDb, signing_seed: &[u8; 32]) -> Result<Self> {
        Self::start_with(db, signing_seed, &[]).await
    }

    /// Like [`ServerProcess::start`], with more settings in the environment
    /// (`HEARTH_...` names and values).
    pub async fn start_with(
        db: &TestDb,
        signing_seed: &[u8; 32],
        settings: &[(String, String)],
    ) -> Result<Self> {
        Self::spawn(
            Command::new(server_binary()?),
            db,
            signing_seed,
            settings,
            None,
        )
        .await
    }

    /// Like [`ServerProcess::start_with`], with another server binary (say,
    /// the previous release's).
    pub async fn start_binary(
        binary: &std::path::Path,
        db: &TestDb,
        signing_seed: &[u8; 32],
        settings: &[(String, String)],
    ) -> Result<Self> {
        Self::spawn(Command::new(binary), db, signing_seed, settings, None).await
    }

    /// Like [`ServerProcess::start_with`] on SQLite, with the data directory
    /// on a disk of its own of `bytes` bytes (a tmpfs, empty at first,
    /// mounted in a mount namespace of the server's: `unshare` as an
    /// unprivileged user, with no effect outside). The test reaches it
    /// through [`ServerProcess::small_disk`], to fill it and make room.
    pub async fn start_on_small_disk(
        db: &TestDb,
        signing_seed: &[u8; 32],
        settings: &[(String, String)],
        bytes: u64,
    ) -> Result<Self> {
        let TestDb::Sqlite(dir) = db else {
            bail!("a small disk holds a SQLite data directory");
        };
        let mut command = Command::new("unshare");
        command
            .args([
                "--user",
                "--map-root-user",
                "--mount",
                "--propagation",
                "private",
            ])
            .args([
                "sh",
                "-c",
                "mount -t tmpfs -o size=\"$1\" tmpfs \"$2\" && shift 2 && exec \"$@\"",
                "sh",
            ])
            .arg(bytes.to_string())
            .arg(dir.path())
            .arg(server_binary()?);
        let disk = dir.path().to_path_buf();
        Self::spawn(command, db, signing_seed, settings, Some(disk)).await
    }

    /// The data directory on the server's own small disk, as this process
    /// reaches it (through `/proc/<pid>/root`, into the server's mount
    /// namespace).
    pub fn small_disk(&self) -> Option<PathBuf> {
        let disk = self.small_disk.as_ref()?;
        let pid = self.child.id()?;
        let inside = disk.strip_prefix("/").ok()?;
        Some(PathBuf::from(format!("/proc/{pid}/root")).join(inside))
    }

    async fn spawn(
        mut command: Command,
        db: &TestDb,
        signing_seed: &[u8; 32],
        settings: &[(String, String)],
        small_disk: Option<PathBuf>,
    ) -> Result<Self> {
        for (key, _) in std::env::vars() {
            if key.starts_with("HEARTH_") || key == "DATABASE_URL" {
                command.env_remove(key);
            }
        }
        let generous = "100000";
        command
            .env("HEARTH_LISTEN", "127.0.0.1:0")
            .env("HEARTH_WORKERS", "2")
            .env("HEARTH_LOG__FORMAT", "json")
            .env("HEARTH_LOG__LEVEL", "info")
            .env("HEARTH_AUTH__SIGNING_KEY", b64(signing_seed))
            .env("HEARTH_RATE_LIMITS__PER_IP__BURST", generous)
            .env("HEARTH_RATE_LIMITS__PER_IP__PER_MINUTE", generous)
            .env("HEARTH_DELIVERY__SEND_RATE__BURST", generous)
            .env("HEARTH_DELIVERY__SEND_RATE__PER_MINUTE", generous)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command.envs(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match db {
            TestDb::Sqlite(dir) => command.env("HEARTH_DATA_DIR", dir.path()),
            TestDb::Postgres(url) => command.env("DATABASE_URL", url),
        };
        let mut child = command.spawn().context("starting hearth-server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("hearth-server listening") {
                    let log: serde_json::Value = serde_json::from_str(&line)?;
                    return log["port"].as_u64().context("no port in the log line");
                }
            }
            bail!("hearth-server exited before listening")
        })
        .await;
        let port = match port {
            Ok(Ok(port)) => port,
            failed => {
                let mut error = String::new();
                if let Some(stderr) = child.stderr.take() {
                    let mut stderr = BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = stderr.next_line().await {
                        error.push_str(&line);
                    }
                }
                bail!("hearth-server did not start ({failed:?}): {error}");
            }
        };
        // Keep reading its output, so that a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            small_disk,
            address: format!("http://127.0.0.1:{port}"),
        })
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `SIGKILL`: no shutdown, no flush, no goodbye.
    pub async fn kill(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// `SIGTERM`, then waits for the graceful stop; fails if it did not exit
    /// cleanly.
    pub async fn stop(mut self) -> Result<()> {
        let pid = self.child.id().context("already exited")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        if !exit.success() {
            bail!("hearth-server exited with {exit}");
        }
        Ok(())
    }
}

/// Runs `hearth-server admin <args>` on the database of `db`, as an
/// operator would (the environment holds nothing but where the database
/// is), and returns what it printed.
pub async fn admin(db: &TestDb, args: &[&str]) -> Result<std::process::Output> {
    let mut command = Command::new(server_binary()?);
    command
        .arg("admin")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    match db {
        TestDb::Sqlite(dir) => command.env("HEARTH_DATA_DIR", dir.path()),
        TestDb::Postgres(url) => command.env("DATABASE_URL", url),
    };
    Ok(command.output().await?)
}
