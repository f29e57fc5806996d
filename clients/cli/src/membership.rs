//! Circles and who is in them: create, list, show, members, remove, leave,
//! the call.

use crate::{hex, resolve, say};
use anyhow::{Result, bail};
use clap::Subcommand;
use hearth_client::Client;
use hearth_protocol::CircleId;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum MembershipCommand {
    /// Circles: create, list, show.
    #[command(subcommand)]
    Circle(CircleCommand),
    /// Who is in a circle: names, roles and device ids.
    Members {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Remove a member (facilitators): by name, or by device id.
    Remove {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The member's name as `hearth members` shows it, or a device id.
        #[arg(allow_hyphen_values = true)]
        who: String,
    },
    /// Leave a circle.
    Leave {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Join the circle's video call: prints the video server, the room and a
    /// token (never a media key).
    Call {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
}

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: MembershipCommand, j: bool) -> Result<()> {
    match command {
        MembershipCommand::Circle(CircleCommand::Create { title }) => {
            let circle = client.create_circle().await?;
            if let Some(title) = &title {
                client.set_title(&circle, title).await?;
            }
            say(j, json!({ "circle_id": circle, "title": title }), || {
                format!(
                    "created circle {} ({circle}); invite people with `hearth invite {circle}`",
                    title.as_deref().unwrap_or("untitled")
                )
            });
        }

        MembershipCommand::Circle(CircleCommand::List) => {
            client.accept_welcomes().await?;
            let mut listed = Vec::new();
            for circle in client.circles().await? {
                match client.sync(&circle).await {
                    // Noticed now: it moves to the past circles below.
                    Err(hearth_client::ClientError::RemovedFromCircle) => continue,
                    other => other?,
                };
                listed.push((circle.clone(), client.title(&circle).await?));
            }
            let mut past = Vec::new();
            for (circle, removed) in client.past_circles().await? {
                past.push((circle.clone(), client.title(&circle).await?, removed));
            }
            let value: Vec<Value> = listed
                .iter()
                .map(|(id, title)| json!({ "circle_id": id, "title": title }))
                .collect();
            let past_value: Vec<Value> = past
                .iter()
                .map(|(id, title, removed)| json!({ "circle_id": id, "title": title, "removed": removed }))
                .collect();
            say(
                j,
                json!({ "circles": value, "past_circles": past_value }),
                || {
                    let mut lines: Vec<String> = listed
                        .iter()
                        .map(|(id, title)| {
                            format!("{}  {id}", title.as_deref().unwrap_or("untitled"))
                        })
                        .collect();
                    if lines.is_empty() && past.is_empty() {
                        lines.push(
                            "you are in no circles yet: create one with `hearth circle create`, \
                             or join with `hearth join <link>`"
                                .to_owned(),
                        );
                    } else if lines.is_empty() {
                        lines.push(
                            "you are in no circles now (a new invite link brings you back); \
                             past circles:"
                                .to_owned(),
                        );
                    }
                    lines.extend(past.iter().map(|(id, title, removed)| {
                        format!(
                            "{}  {id}  ({})",
                            title.as_deref().unwrap_or("untitled"),
                            if *removed {
                                "you were removed"
                            } else {
                                "you left"
                            }
                        )
                    }));
                    lines.join("\n")
                },
            );
        }

        MembershipCommand::Circle(CircleCommand::Show { circle }) => {
            client.sync(&circle).await?;
            let epoch = client.epoch(&circle).await?;
            let authenticator = hex(&client.epoch_authenticator(&circle).await?);
            say(
                j,
                json!({ "circle_id": circle, "epoch": epoch, "epoch_authenticator": authenticator }),
                || format!("circle {circle}\nepoch {epoch}\nepoch authenticator {authenticator}"),
            );
        }
        MembershipCommand::Members { circle } => {
            client.sync(&circle).await?;
            let roster = client.roster(&circle).await?;
            let in_group = client.members(&circle).await?;
            let names = client.names(&circle).await?;
            let me = client.device_id().await?;
            let rows: Vec<Value> = roster
                .iter()
                .map(|r| {
                    json!({
                        "device_id": r.device_id,
                        "name": names.get(&r.device_id),
                        "role": r.role,
                        "you": Some(r.device_id) == me,
                        "in_group": in_group.contains(&r.device_id),
                    })
                })
                .collect();
            say(j, json!({ "members": rows }), || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{}  {}  {}{}{}",
                            r["name"].as_str().unwrap_or("(no name yet)"),
                            r["role"].as_str().unwrap_or_default(),
                            r["device_id"].as_str().unwrap_or_default(),
                            if r["you"] == true { "  (you)" } else { "" },
                            if r["in_group"] == false {
                                "  (not in the encrypted group yet)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MembershipCommand::Remove { circle, who } => {
            client.sync(&circle).await?;
            let devices = resolve(client, &circle, &[&who]).await?;
            if client
                .device_id()
                .await?
                .is_some_and(|me| devices.contains(&me))
            {
                bail!("that is you: to leave the circle, run `hearth leave {circle}`");
            }
            client.remove_devices(&circle, &devices).await?;
            say(j, json!({ "removed": devices }), || {
                format!(
                    "removed {who} ({} device{}): they read nothing new from now on",
                    devices.len(),
                    if devices.len() == 1 { "" } else { "s" }
                )
            });
        }
        MembershipCommand::Leave { circle } => {
            client.leave(&circle).await?;
            say(j, json!({ "left": circle }), || {
                "left the circle; its messages so far stay readable here".to_owned()
            });
        }
        MembershipCommand::Call { circle } => {
            let call = client.join_call(&circle).await?;
            say(
                j,
                json!({ "url": call.url, "room": call.room, "token": call.token, "expires_at": call.expires_at }),
                || {
                    format!(
                        "video server {}\nroom {}\ntoken {}",
                        call.url, call.room, call.token
                    )
                },
            );
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum CircleCommand {
    /// Create a circle; you are its facilitator.
    Create {
        /// The circle's title (sent encrypted to its members).
        #[arg(long)]
        title: Option<String>,
    },
    /// The circles this device is in.
    List,
    /// A circle's epoch and its epoch authenticator (compare it with others').
    Show {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
}
