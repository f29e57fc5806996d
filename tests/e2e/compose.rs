//! No Docker engine runs here, so the deployment files are checked by
//! reading them: the compose file's structure, the environment the server
//! needs (parsed by the server's own configuration loader), the Dockerfile and
//! the balancer's configuration.

use anyhow::{Context as _, Result};
use hearth_server::config::Config;
use serde_yaml::Value;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(name: &str) -> Result<String> {
    std::fs::read_to_string(repo_root().join(name)).with_context(|| format!("reading {name}"))
}

fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((k.as_str()?.to_owned(), value))
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
#[allow(clippy::result_large_err)] // figment::Jail's own signature
fn compose_runs_postgres_two_nodes_and_a_balancer() -> Result<()> {
    let mut doc: Value = serde_yaml::from_str(&read("docker-compose.yml")?)?;
    doc.apply_merge()?; // resolve `<<: *hearth`
    let services = doc["services"].as_mapping().context("services")?;
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    for expected in ["postgres", "hearth-1", "hearth-2", "balancer", "livekit"] {
        assert!(names.contains(&expected), "service {expected} in {names:?}");
    }

    let postgres = &doc["services"]["postgres"];
    assert!(
        postgres["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("postgres:"))
    );
    assert!(postgres["healthcheck"]["test"].is_sequence());

    let mut livekit_keys = Vec::new();
    for node in ["hearth-1", "hearth-2"] {
        let service = &doc["services"][node];
        assert_eq!(
            service["build"]["dockerfile"].as_str(),
            Some("Dockerfile"),
            "{node} builds ours"
        );
        assert_eq!(
            service["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{node} waits for the database"
        );
        let env = environment(service);
        let url = env
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .map(|(_, v)| v.clone());
        assert!(
            url.as_deref()
                .is_some_and(|u| u.starts_with("postgres://") && u.contains("@postgres:")),
            "{node} DATABASE_URL"
        );

        // The server's own loader accepts exactly this environment.
        let mut loaded = None;
        figment::Jail::try_with(|jail| {
            for (key, value) in &env {
                jail.set_env(key, value);
            }
            loaded = Some(Config::load(None).map_err(|e| e.to_string())?);
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{node}: {e}"))?;
        let config = loaded.context("configuration loaded")?;
        assert!(config.database_url.is_some(), "{node} runs on PostgreSQL");
        assert!(
            config.listen.starts_with("0.0.0.0:"),
            "{node} listens beyond loopback"
        );
        assert!(
            config.rate_limits.trust_forwarded_for,
            "{node} sits behind the balancer"
        );
        livekit_keys.push((
            config.video.api_key.clone().context("video.api_key")?,
            config
                .video
                .api_secret
                .as_ref()
                .map(|s| secrecy::ExposeSecret::expose_secret(s).to_owned())
                .context("video.api_secret")?,
        ));
        assert!(config.video.url.is_some(), "{node} names the SFU");
    }

    // LiveKit runs with the key pair both nodes sign with.
    let livekit = &doc["services"]["livekit"];
    assert!(
        livekit["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("livekit/livekit-server:"))
    );
    let keys = environment(livekit)
        .into_iter()
        .find(|(k, _)| k == "LIVEKIT_KEYS")
        .map(|(_, v)| v)
        .context("LIVEKIT_KEYS")?;
    for (key, secret) in &livekit_keys {
        assert_eq!(keys, format!("{key}: {secret}"), "the nodes' key pair");
    }

    let balancer = &doc["services"]["balancer"];
    assert!(
        balancer["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("nginx:"))
    );
    let volumes: Vec<&str> = balancer["volumes"]
        .as_sequence()
        .context("volumes")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mount = volumes
        .iter()
        .find(|v| v.contains("nginx.conf"))
        .context("nginx.conf mounted")?;
    let source = mount.split(':').next().unwrap_or_default();
    let nginx = read(source.trim_start_matches("./"))?;
    assert!(nginx.contains("server hearth-1:8080") && nginx.contains("server hearth-2:8080"));
    assert!(
        nginx.contains("X-Forwarded-For"),
        "the balancer forwards the client address"
    );
    assert!(
        nginx.contains("access_log off"),
        "request lines (with ids) are not logged"
    );
    assert!(nginx.contains("Upgrade"), "WebSockets pass through");
    Ok(())
}

/// What the Dockerfile says, read as text (no Docker engine runs here):
/// a `--locked` release build, the binary as entry point, an unprivileged
/// user, curl for the health check, the workspace's toolchain. `.ci/run`
/// runs the server as the image does (its environment, its data directory,
/// an unprivileged user) and checks that `--locked` resolves.
#[test]
fn the_dockerfile_asks_for_a_locked_build_an_unprivileged_user_and_the_workspace_toolchain()
-> Result<()> {
    let dockerfile = read("Dockerfile")?;
    assert!(dockerfile.contains("cargo build --release --locked -p hearth-server"));
    assert!(dockerfile.contains("target/release/hearth-server"));
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/hearth-server\"]"));
    assert!(dockerfile.contains("USER hearth"), "does not run as root");
    assert!(
        dockerfile.contains("curl"),
        "the compose health check has curl"
    );
    let rust = dockerfile
        .lines()
        .find(|l| l.starts_with("FROM rust:"))
        .context("a Rust build stage")?;
    let version = rust
        .trim_start_matches("FROM rust:")
        .split('-')
        .next()
        .unwrap_or_default();
    let workspace = read("Cargo.toml")?;
    assert!(
        workspace.contains(&format!("rust-version = \"{version}\"")),
        "the image has the toolchain the workspace asks for"
    );
    Ok(())
}
