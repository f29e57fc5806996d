//! Circles and who is in them: create, list, show, members, remove, leave,
//! the call.

use crate::account::{CircleEntry, past_circles};
use crate::{Output, hex, resolve, say};
use anyhow::{Result, bail};
use clap::Subcommand;
use hearth_client::Client;
use hearth_protocol::circles::Role;
use hearth_protocol::{CircleId, DeviceId};
use serde::Serialize;
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

/// A circle created.
#[derive(Serialize)]
struct Created {
    circle_id: CircleId,
    title: Option<String>,
}

impl Output for Created {
    fn text(&self) -> String {
        let circle = &self.circle_id;
        format!(
            "created circle {} ({circle}); invite people with `hearth invite {circle}`",
            self.title.as_deref().unwrap_or("untitled")
        )
    }
}

/// The circles this device is in, and those it was in.
#[derive(Serialize)]
struct Circles {
    circles: Vec<CircleEntry>,
    past_circles: Vec<CircleEntry>,
}

impl Output for Circles {
    fn text(&self) -> String {
        let title = |c: &CircleEntry| c.title.clone().unwrap_or_else(|| "untitled".to_owned());
        let mut lines: Vec<String> = self
            .circles
            .iter()
            .map(|c| format!("{}  {}", title(c), c.circle_id))
            .collect();
        if lines.is_empty() && self.past_circles.is_empty() {
            lines.push(
                "you are in no circles yet: create one with `hearth circle create`, or join \
                 with `hearth join <link>`"
                    .to_owned(),
            );
        } else if lines.is_empty() {
            lines.push(
                "you are in no circles now (a new invite link brings you back); past circles:"
                    .to_owned(),
            );
        }
        lines.extend(self.past_circles.iter().map(|c| {
            format!(
                "{}  {}  ({})",
                title(c),
                c.circle_id,
                if c.removed == Some(true) {
                    "you were removed"
                } else {
                    "you left"
                }
            )
        }));
        lines.join("\n")
    }
}

/// A circle's epoch and epoch authenticator.
#[derive(Serialize)]
struct Shown {
    circle_id: CircleId,
    epoch: u64,
    epoch_authenticator: String,
}

impl Output for Shown {
    fn text(&self) -> String {
        format!(
            "circle {}\nepoch {}\nepoch authenticator {}",
            self.circle_id, self.epoch, self.epoch_authenticator
        )
    }
}

/// One device on the roster.
#[derive(Serialize)]
struct Member {
    device_id: DeviceId,
    name: Option<String>,
    role: Role,
    you: bool,
    in_group: bool,
}

/// Who is in a circle.
#[derive(Serialize)]
struct Members {
    members: Vec<Member>,
}

impl Output for Members {
    fn text(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "{}  {}  {}{}{}",
                    m.name.as_deref().unwrap_or("(no name yet)"),
                    match m.role {
                        Role::Facilitator => "facilitator",
                        Role::Member => "member",
                    },
                    m.device_id,
                    if m.you { "  (you)" } else { "" },
                    if m.in_group {
                        ""
                    } else {
                        "  (not in the encrypted group yet)"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Devices removed from a circle.
#[derive(Serialize)]
struct Removed {
    removed: Vec<DeviceId>,
    #[serde(skip)]
    who: String,
}

impl Output for Removed {
    fn text(&self) -> String {
        format!(
            "removed {} ({} device{}): they read nothing new from now on",
            self.who,
            self.removed.len(),
            if self.removed.len() == 1 { "" } else { "s" }
        )
    }
}

/// A circle left.
#[derive(Serialize)]
struct Left {
    left: CircleId,
}

impl Output for Left {
    fn text(&self) -> String {
        "left the circle; its messages so far stay readable here".to_owned()
    }
}

/// Where and how to join the call (never a media key).
#[derive(Serialize)]
struct CallTicket {
    url: String,
    room: String,
    token: String,
    expires_at: i64,
}

impl Output for CallTicket {
    fn text(&self) -> String {
        format!(
            "video server {}\nroom {}\ntoken {}",
            self.url, self.room, self.token
        )
    }
}

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: MembershipCommand, j: bool) -> Result<()> {
    match command {
        MembershipCommand::Circle(CircleCommand::Create { title }) => {
            let circle_id = client.create_circle().await?;
            if let Some(title) = &title {
                client.set_title(&circle_id, title).await?;
            }
            say(j, &Created { circle_id, title });
        }

        MembershipCommand::Circle(CircleCommand::List) => {
            // A circle found removed now moves to the past circles below.
            client.sync_all().await?;
            let mut circles = Vec::new();
            for circle_id in client.circles().await? {
                circles.push(CircleEntry::of(client, circle_id, None).await?);
            }
            let past_circles = past_circles(client).await?;
            say(
                j,
                &Circles {
                    circles,
                    past_circles,
                },
            );
        }

        MembershipCommand::Circle(CircleCommand::Show { circle }) => {
            client.sync(&circle).await?;
            let epoch = client.epoch(&circle).await?;
            let epoch_authenticator = hex(&client.epoch_authenticator(&circle).await?);
            say(
                j,
                &Shown {
                    circle_id: circle,
                    epoch,
                    epoch_authenticator,
                },
            );
        }
        MembershipCommand::Members { circle } => {
            client.sync(&circle).await?;
            let roster = client.roster(&circle).await?;
            let in_group = client.members(&circle).await?;
            let names = client.names(&circle).await?;
            let me = client.device_id().await?;
            let members = roster
                .iter()
                .map(|r| Member {
                    device_id: r.device_id,
                    name: names.get(&r.device_id).cloned(),
                    role: r.role,
                    you: Some(r.device_id) == me,
                    in_group: in_group.contains(&r.device_id),
                })
                .collect();
            say(j, &Members { members });
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
            say(
                j,
                &Removed {
                    removed: devices,
                    who,
                },
            );
        }
        MembershipCommand::Leave { circle } => {
            client.leave(&circle).await?;
            say(j, &Left { left: circle });
        }
        MembershipCommand::Call { circle } => {
            let call = client.join_call(&circle).await?;
            say(
                j,
                &CallTicket {
                    url: call.url,
                    room: call.room,
                    token: call.token,
                    expires_at: call.expires_at,
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
