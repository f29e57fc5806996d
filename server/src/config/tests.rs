//! The settings: every field documented, listed, read from the environment
//! and bounded; the README's table generated from them.

use super::*;
use secrecy::ExposeSecret;

fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    match value.as_object() {
        Some(map) => {
            for (name, inner) in map {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                leaves(&key, inner, out);
            }
        }
        None => out.push(prefix.to_owned()),
    }
}

#[test]
fn every_field_is_a_setting_with_a_meaning_and_help_names_each() {
    let mut keys = Vec::new();
    leaves(
        "",
        &serde_json::to_value(Config::default()).unwrap(),
        &mut keys,
    );
    let settings = settings();
    let mut listed: Vec<String> = settings.iter().map(|s| s.key.clone()).collect();
    keys.sort();
    listed.sort();
    assert_eq!(
        keys, listed,
        "the settings read from the docs and Config differ"
    );
    for setting in &settings {
        assert!(
            setting.meaning.len() > 8,
            "{} has no documentation",
            setting.key
        );
    }
    let help = settings_help();
    for key in &keys {
        let var = env_var(key);
        assert!(help.contains(&var), "--help lacks {var}");
    }
    assert!(help.contains("HEARTH_DELIVERY__EPOCH_WINDOW = 0"));
    assert!(help.contains("HEARTH_AUTH__SIGNING_KEY = unset"));
    assert!(help.contains("HEARTH_RATE_LIMITS__PER_IP__BURST = 60: Challenges, registrations"));
}

/// The README's table is generated: `WRITE_README=1 cargo test -p
/// hearth-server config` rewrites it from the field docs.
#[test]
fn the_readme_table_of_settings_is_the_one_the_field_docs_make() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (begin, end) = (
        "<!-- settings: generated from server/src/config.rs -->\n",
        "<!-- /settings -->",
    );
    let start = readme
        .find(begin)
        .expect("the README marks its settings table")
        + begin.len();
    let stop = readme[start..]
        .find(end)
        .expect("the table's end is marked")
        + start;
    let table = settings_table();
    if std::env::var_os("WRITE_README").is_some() {
        let written = format!("{}{table}{}", &readme[..start], &readme[stop..]);
        std::fs::write(&path, written).unwrap();
        return;
    }
    assert!(
        readme[start..stop] == table,
        "the README's settings table is not the one the field docs make: run \
         WRITE_README=1 cargo test -p hearth-server config"
    );
}

#[test]
fn every_listed_variable_is_read_from_the_environment() {
    let defaults = serde_json::to_value(Config::default()).unwrap();
    for Setting { key, .. } in settings() {
        let key = key.as_str();
        // A number other than the default, within the setting's bounds.
        let number = BOUNDS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(k, least, most)| {
                let path = format!("/{}", k.replace('.', "/"));
                let default = defaults.pointer(&path).and_then(|v| v.as_u64());
                [7, *least, *most]
                    .into_iter()
                    .find(|n| (*least..=*most).contains(n) && Some(*n) != default)
                    .unwrap_or(*most)
                    .to_string()
            })
            .unwrap_or_else(|| "7".to_owned());
        figment::Jail::expect_with(|jail| {
            let value = match key {
                "log.format" => "json",
                "push.apns.wake" => "background",
                "accounts.facilitators" => "enrolled",
                "log.level" | "auth.issuer" | "auth.audience" => "x",
                "push.target_key"
                | "push.web_push.vapid_private_key"
                | "push.web_push.subject"
                | "push.apns.key"
                | "push.apns.key_id"
                | "push.apns.team_id"
                | "push.apns.topic"
                | "push.apns.production_url"
                | "push.apns.sandbox_url"
                | "push.apns.alert_body"
                | "push.apns.alert_loc_key"
                | "push.fcm.service_account"
                | "push.fcm.project_id"
                | "push.fcm.base_url" => "x",
                "listen" => "127.0.0.1:1",
                "data_dir" => "/tmp/x",
                "database_url" => "postgres://h/d",
                "auth.signing_key" | "auth.key_wrapping_key" => "AAAA",
                "rate_limits.trust_forwarded_for"
                | "push.allow_private_endpoints"
                | "push.apns.sandbox" => "true",
                "delivery.epoch_window" => "3",
                "video.url" | "video.api_key" | "video.api_secret" => {
                    jail.set_env("HEARTH_VIDEO__URL", "wss://sfu.example");
                    jail.set_env("HEARTH_VIDEO__API_KEY", "devkey");
                    jail.set_env("HEARTH_VIDEO__API_SECRET", "x".repeat(32));
                    "wss://sfu.example/0123456789abcdef"
                }
                "video.token_ttl_secs" => "120",
                "video.api_url" => "https://sfu.example",
                "auth.access_token_ttl_secs" => "600",
                "limits.json_body_bytes" => "4096",
                // Above the defaults that must stay below them.
                "delivery.max_members_bound" => "100",
                "delivery.max_retention_secs" => "300000000",
                _ => number.as_str(),
            };
            jail.set_env(env_var(key), value);
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let loaded = serde_json::to_value(&config).unwrap();
            let default = serde_json::to_value(Config::default()).unwrap();
            let path = format!("/{}", key.replace('.', "/"));
            assert_ne!(
                loaded.pointer(&path),
                default.pointer(&path),
                "{key} was not read"
            );
            Ok(())
        });
    }
}

#[test]
fn environment_overrides_file_and_database_url_is_honoured() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "hearth.toml",
            "listen = \"0.0.0.0:9000\"\n[log]\nformat = \"json\"\n",
        )?;
        jail.set_env("HEARTH_LOG__LEVEL", "debug");
        jail.set_env("HEARTH_RATE_LIMITS__PER_IP__BURST", "5");
        jail.set_env("HEARTH_RATE_LIMITS__PER_IP__PER_MINUTE", "1");
        jail.set_env("DATABASE_URL", "postgres://db/hearth");
        let config = Config::load(Some(Path::new("hearth.toml"))).expect("loads");
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.log.level, "debug");
        assert_eq!(config.rate_limits.per_ip.burst, 5);
        assert_eq!(
            config
                .database_url
                .as_ref()
                .map(|u| u.expose_secret().to_owned()),
            Some("postgres://db/hearth".to_owned())
        );
        Ok(())
    });
}

#[test]
fn every_number_a_setting_holds_has_a_bound_and_is_held_to_it() {
    let mut keys = Vec::new();
    leaves(
        "",
        &serde_json::to_value(Config::default()).unwrap(),
        &mut keys,
    );
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let numeric: Vec<&String> = keys
        .iter()
        .filter(|k| {
            let path = format!("/{}", k.replace('.', "/"));
            defaults.pointer(&path).is_some_and(|v| v.is_number())
        })
        .collect();
    for key in &numeric {
        assert!(
            BOUNDS.iter().any(|(k, _, _)| k == key),
            "{key} has no bound in BOUNDS"
        );
    }
    for (key, least, most) in BOUNDS {
        let path = format!("/{}", key.replace('.', "/"));
        let default = defaults.pointer(&path).and_then(|v| v.as_u64());
        if let Some(default) = default {
            assert!((*least..=*most).contains(&default), "{key}'s default");
        }
        // Past the top is refused at start, naming the setting.
        figment::Jail::expect_with(|jail| {
            jail.set_env(env_var(key), (u128::from(*most) + 1).to_string());
            match Config::load(None) {
                Err(ConfigError::Invalid(why)) => assert!(why.contains(key), "{why}"),
                Err(ConfigError::Parse(_)) => {} // past what the type holds
                Ok(_) => panic!("{key} above {most} was accepted"),
            }
            Ok(())
        });
    }
    // The defect found: a delay the wake arithmetic cannot take.
    figment::Jail::expect_with(|jail| {
        jail.set_env("HEARTH_PUSH__MAX_DELAY_SECS", u64::MAX.to_string());
        let refused = Config::load(None).map(|_| ()).unwrap_err().to_string();
        assert!(refused.contains("push.max_delay_secs"), "{refused}");
        Ok(())
    });
}

#[test]
fn typos_and_out_of_range_values_are_refused() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("HEARTH_LISTN", "0.0.0.0:1");
        assert!(Config::load(None).is_err());
        Ok(())
    });
    figment::Jail::expect_with(|jail| {
        jail.set_env("HEARTH_AUTH__ACCESS_TOKEN_TTL_SECS", "3600");
        assert!(matches!(Config::load(None), Err(ConfigError::Invalid(_))));
        Ok(())
    });
}

#[test]
fn an_apns_placeholder_empty_or_too_long_is_refused() {
    let mut config = Config::default();
    assert!(config.validate().is_ok());
    config.push.apns.alert_body = String::new();
    assert!(config.validate().is_err(), "an empty placeholder");
    config.push.apns.alert_body = "x".repeat(201);
    assert!(
        config.validate().is_err(),
        "a placeholder past 200 characters"
    );
    config.push.apns.alert_body = "New activity".into();
    config.push.apns.alert_loc_key = Some(String::new());
    assert!(config.validate().is_err(), "an empty localisation key");
}
