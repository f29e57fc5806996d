//! The fuzz seeds come from real traffic: two SDK clients go through a
//! circle's life behind a recording proxy, and every JSON body they send is
//! kept. The scenario checks that each route the SDK uses was seen; with
//! `FUZZ_SEEDS_OUT` set (`scripts/fuzz --refresh-seeds`), the bodies are
//! written under it as the request-body target's seeds, and the uploaded
//! KeyPackages as the KeyPackage check's.

use anyhow::Result;
use hearth_client::Client;
use hearth_tests::clients::{data_dirs, join};
use hearth_tests::recorder::Recorder;
use hearth_tests::{Db, TestApp};
use std::collections::BTreeSet;

/// The route of a recorded request, the circle id in its path left out.
fn route_of(record: &hearth_tests::recorder::Recorded) -> String {
    let parts: Vec<&str> = record.route.split('/').collect();
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i > 0 && parts[i - 1] == "circles" {
                "{id}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn a_circles_life_through_the_sdk_sends_a_body_to_every_route_it_uses() -> Result<()> {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let proxy = Recorder::start(&app.address).await?;
    let dirs = data_dirs(2)?;
    let alice = Client::open(&proxy.url(), dirs[0].path()).await?;
    let sam = Client::open(&proxy.url(), dirs[1].path()).await?;
    alice.register(None).await?;
    sam.register(None).await?;
    let circle = alice.create_circle().await?;
    alice.set_title(&circle, "Tuesday group").await?;
    join(&alice, &sam, &circle).await?;
    alice.send_text(&circle, "welcome").await?;
    sam.sync(&circle).await?;
    sam.send_text(&circle, "thank you").await?;
    alice.sync(&circle).await?;
    let series = hearth_protocol::schedule::Series {
        first_date: "2026-12-01".parse()?,
        start_time: "19:00".parse()?,
        time_zone: "Europe/Berlin".into(),
        duration_minutes: 90,
        every_weeks: 2,
        count: Some(6),
        until: None,
        title: Some("Tuesday circle".into()),
        agenda: None,
        video_room: false,
    };
    alice.schedule_series(&circle, series).await?;
    sam.sync(&circle).await?;
    let _ = sam
        .set_push_target(&hearth_protocol::push::PushTarget::Fcm {
            token: "registration-token".into(),
        })
        .await;

    let recorded = proxy.recorded();
    let routes: BTreeSet<String> = recorded.iter().map(route_of).collect();
    for route in [
        "POST /v1/devices",
        "POST /v1/key-packages",
        "POST /v1/key-packages/claim",
        "POST /v1/circles",
        "POST /v1/circles/{id}/commits",
        "POST /v1/circles/{id}/messages",
        "POST /v1/sync",
        "POST /v1/circles/{id}/invites",
        "POST /v1/invites/redeem",
        "PUT /v1/circles/{id}/snapshot",
        "PUT /v1/devices/current/push",
    ] {
        assert!(routes.contains(route), "{route} not seen; seen: {routes:?}");
    }

    if let Some(root) = std::env::var_os("FUZZ_SEEDS_OUT") {
        let root = std::path::PathBuf::from(root);
        let out = root.join("request_bodies");
        std::fs::create_dir_all(&out)?;
        // The KeyPackages the SDK uploaded seed the KeyPackage check.
        let packages = root.join("key_packages");
        std::fs::create_dir_all(&packages)?;
        if let Some(upload) = recorded.iter().find(|r| r.route == "POST /v1/key-packages") {
            let upload: hearth_protocol::key_packages::UploadKeyPackages =
                serde_json::from_slice(&upload.body)?;
            for (i, package) in upload.key_packages.iter().take(3).enumerate() {
                std::fs::write(
                    packages.join(format!("captured-{i}.bin")),
                    package.as_slice(),
                )?;
            }
        }
        // Every MLS blob the SDK posted seeds the framing reader.
        let blobs = root.join("mls_framing");
        std::fs::create_dir_all(&blobs)?;
        for record in &recorded {
            let parts: Vec<hearth_protocol::Base64Bytes> = match route_of(record).as_str() {
                "POST /v1/circles/{id}/messages" => {
                    serde_json::from_slice::<hearth_protocol::circles::SendMessage>(&record.body)
                        .map(|m| vec![m.ciphertext])
                        .unwrap_or_default()
                }
                "POST /v1/circles/{id}/commits" => {
                    serde_json::from_slice::<hearth_protocol::circles::CommitBundle>(&record.body)
                        .map(|c| {
                            [Some(c.commit), c.welcome, c.group_info]
                                .into_iter()
                                .flatten()
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => Vec::new(),
            };
            for part in parts {
                let kind = match hearth_protocol::framing::read(part.as_slice()) {
                    Ok(header) => format!("{:?}", header.wire_format()),
                    Err(_) => continue,
                };
                let name = format!(
                    "captured-{}-{}.bin",
                    kind.to_lowercase(),
                    part.as_slice().len()
                );
                std::fs::write(blobs.join(name), part.as_slice())?;
            }
        }
        let mut kept = BTreeSet::new();
        for record in &recorded {
            // One body per route and size class is plenty of seed.
            let key = (route_of(record), record.body.len() / 512);
            if !kept.insert(key) {
                continue;
            }
            let name = format!(
                "captured-{}-{}.json",
                route_of(record)
                    .replace([' ', '/', '{', '}'], "_")
                    .to_lowercase(),
                record.body.len()
            );
            std::fs::write(out.join(name), &record.body)?;
        }
    }
    Ok(())
}
