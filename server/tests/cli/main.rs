//! The `hearth-server` binary as an operator meets it: `--help` names every
//! setting with its environment variable, and a mistake in the configuration
//! is one line naming the mistake, with a failing exit status.
#![allow(clippy::expect_used)]

use hearth_server::config::settings;
use std::process::{Command, Output};

fn server(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth-server"));
    command.args(args).current_dir(dir.path());
    // Only what the case sets: no HEARTH_* of the caller's leaks in.
    for (key, _) in std::env::vars() {
        if key.starts_with("HEARTH_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("hearth-server runs")
}

#[test]
fn help_names_every_setting_and_its_environment_variable() {
    let out = server(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for setting in settings() {
        let key = setting.key.as_str();
        let var = format!("HEARTH_{}", key.replace('.', "__").to_uppercase());
        assert!(help.contains(key), "--help lacks {key}");
        assert!(help.contains(&var), "--help lacks {var}");
    }
}

#[test]
fn a_misspelt_variable_is_one_line_naming_it_and_a_failing_exit() {
    let out = server(
        &[],
        &[("HEARTH_LISTN", "127.0.0.1:0"), ("RUST_BACKTRACE", "1")],
    );
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert_eq!(error.trim_end().lines().count(), 1, "one line: {error}");
    assert!(
        error.starts_with("hearth-server: loading configuration"),
        "{error}"
    );
    assert!(error.contains("LISTN"), "names the variable: {error}");
    assert!(!error.contains("backtrace"), "{error}");
}

#[test]
fn generated_push_keys_are_settings_a_server_starts_with() {
    let out = server(&["--generate-push-keys"], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let settings: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let names: Vec<&str> = settings.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "HEARTH_PUSH__TARGET_KEY",
            "HEARTH_PUSH__WEB_PUSH__VAPID_PRIVATE_KEY"
        ]
    );
    // Without a subject the server refuses to start, and says which
    // setting is missing: the keys themselves were accepted.
    let mut env = settings.clone();
    env.push(("HEARTH_LISTEN", "127.0.0.1:0"));
    let refused = server(&[], &env);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr);
    assert!(error.contains("push.web_push.subject"), "{error}");
    assert_eq!(error.trim_end().lines().count(), 1, "one line: {error}");
}
