//! A link to the test PostgreSQL that can be cut: a TCP port on 127.0.0.1
//! that forwards each connection to the cluster's Unix socket. Cutting it
//! closes every connection through it at once and turns new ones away — to
//! a server node behind it, PostgreSQL restarted and is not back yet (or the
//! network between them failed); mending it lets connections through again.
//! Nodes that connect directly see nothing of it.
//!
//! Only 127.0.0.1; it stops when dropped.

use anyhow::{Context as _, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::sync::watch;

/// Where the link forwards to.
#[derive(Debug, Clone)]
enum Upstream {
    /// The cluster's Unix socket (as `scripts/postgres.sh` starts it).
    Socket(String),
    /// A loopback TCP address.
    Tcp(String),
}

/// The link.
pub struct PgLink {
    /// A database URL for the same database, through the link.
    pub url: String,
    down: Arc<AtomicBool>,
    /// Bumped at each cut: every open connection closes when it changes.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PgLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLink").finish_non_exhaustive()
    }
}

impl Drop for PgLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PgLink {
    /// A link to the database of `url` (a test database URL of the form
    /// `postgres://user@localhost/name?host=/socket/dir[&port=N]`).
    pub async fn start(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url)?;
        let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        let upstream = match query.get("host") {
            Some(dir) if dir.starts_with('/') => {
                let port = query.get("port").map_or("5432", String::as_str);
                Upstream::Socket(format!("{dir}/.s.PGSQL.{port}"))
            }
            _ => {
                let host = parsed.host_str().context("a database URL names its host")?;
                anyhow::ensure!(
                    host == "localhost"
                        || host
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback()),
                    "a PostgreSQL link only to loopback"
                );
                Upstream::Tcp(format!("{host}:{}", parsed.port().unwrap_or(5432)))
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let local = listener.local_addr()?;
        let mut through = parsed.clone();
        through.set_query(Some("sslmode=disable"));
        through
            .set_host(Some("127.0.0.1"))
            .context("a host for the link")?;
        through
            .set_port(Some(local.port()))
            .map_err(|()| anyhow::anyhow!("a port for the link"))?;
        let down = Arc::new(AtomicBool::new(false));
        let (cuts, _) = watch::channel(0_u64);
        let (is_down, cut) = (down.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let mut cut = cut.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let carried = async {
                        match &upstream {
                            Upstream::Socket(path) => {
                                let mut server = UnixStream::connect(path).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                            Upstream::Tcp(address) => {
                                let mut server = TcpStream::connect(address).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                        }
                    };
                    tokio::select! {
                        _ = carried => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            url: through.to_string(),
            down,
            cuts,
            task,
        })
    }

    /// Closes every connection through the link and refuses new ones until
    /// [`PgLink::mend`].
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    pub fn mend(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}
