//! This device and its account: register, link another device, status, the devices.

use crate::{say, title_of, when};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::{Client, ClientError};
use hearth_protocol::DeviceId;
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Register this profile's device (a new account, or --link to join one).
    Register {
        /// A link token from another device of the account.
        #[arg(long)]
        link: Option<String>,
        /// The name others see (sent encrypted; never to the server).
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a one-time token that links another device to this account.
    Link,
    /// This device, its circles and its KeyPackage pool.
    Status,
    /// The devices of this account; --revoke ID takes a lost one out of
    /// every circle.
    Devices {
        /// Revoke this device of the account.
        #[arg(long)]
        revoke: Option<DeviceId>,
    },
}

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: AccountCommand, j: bool) -> Result<()> {
    match command {
        AccountCommand::Register { link, name } => {
            if let Some(device) = client.device_id().await? {
                say(j, json!({ "device_id": device, "already": true }), || {
                    format!("this profile is registered already, as device {device}")
                });
                return Ok(());
            }
            let device = client.register(link.as_deref()).await?;
            if let Some(name) = name {
                client.set_display_name(&name).await?;
            }
            let account = client.account_id().await?;
            say(
                j,
                json!({ "device_id": device, "account_id": account }),
                || {
                    if link.is_some() {
                        format!(
                            "registered device {device} on your account; your other device adds \
                             it to your circles the next time it syncs"
                        )
                    } else {
                        format!("registered device {device}")
                    }
                },
            );
        }
        AccountCommand::Link => {
            let token = client.link_token().await?;
            say(j, json!({ "link_token": token }), || {
                format!("on the new device: hearth --profile <name> register --link {token}")
            });
        }
        AccountCommand::Status => {
            let joined = client.accept_welcomes().await?;
            for circle in &joined {
                // What came with the Welcome: the circle's title, names.
                match client.sync(circle).await {
                    Err(ClientError::RemovedFromCircle) => {}
                    other => {
                        other?;
                    }
                }
            }
            let pool = client.top_up_key_packages().await?;
            let device = client.device_id().await?;
            let mut circles = Vec::new();
            for circle in client.circles().await? {
                let title = client.title(&circle).await?;
                circles.push(json!({ "circle_id": circle, "title": title }));
            }
            let mut past = Vec::new();
            for (circle, removed) in client.past_circles().await? {
                let title = client.title(&circle).await?;
                past.push(json!({ "circle_id": circle, "title": title, "removed": removed }));
            }
            let mut joined_titles = Vec::new();
            for circle in &joined {
                joined_titles.push(title_of(client, circle).await);
            }
            say(
                j,
                json!({ "device_id": device, "circles": circles, "past_circles": past, "joined": joined, "key_packages": pool.available }),
                || {
                    let mut out = format!(
                        "device {}\n{} KeyPackages waiting for invitations\n",
                        device.map(|d| d.to_string()).unwrap_or_default(),
                        pool.available
                    );
                    for title in &joined_titles {
                        out.push_str(&format!("joined {title}\n"));
                    }
                    if circles.is_empty() {
                        out.push_str("in no circles yet\n");
                    }
                    for circle in circles.iter().chain(&past) {
                        let state = match circle["removed"].as_bool() {
                            Some(true) => "  (you were removed)",
                            Some(false) => "  (you left)",
                            None => "",
                        };
                        out.push_str(&format!(
                            "{}  {}{state}\n",
                            circle["title"].as_str().unwrap_or("(untitled)"),
                            circle["circle_id"].as_str().unwrap_or_default()
                        ));
                    }
                    out.trim_end().to_owned()
                },
            );
        }
        AccountCommand::Devices { revoke } => {
            if let Some(device) = revoke {
                client.revoke_device(device).await?;
                say(j, json!({ "revoked": device }), || {
                    format!(
                        "revoked {device}: it is signed out, out of every circle, and out of \
                         the encryption of the circles this device shares with it (others' \
                         devices remove it elsewhere on their next sync)"
                    )
                });
                return Ok(());
            }
            let list = client.devices().await?;
            let value = serde_json::to_value(&list)?;
            say(j, value, || {
                list.devices
                    .iter()
                    .map(|d| {
                        format!(
                            "{}  since {}{}",
                            d.device_id,
                            when(d.created_at),
                            if d.current { "  (this device)" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    Ok(())
}
