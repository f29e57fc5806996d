//! This device and its account: register, link another device, status, the devices.

use crate::{Output, say, title_of, when};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::Client;
use hearth_protocol::auth::DeviceList;
use hearth_protocol::{AccountId, CircleId, DeviceId};
use serde::Serialize;
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
    /// Whether this account may open circles here; with a code from the
    /// server's operator, enrol as a facilitator (servers of a practice let
    /// only enrolled facilitators open circles).
    Facilitator {
        /// The one-time facilitator code (`hfc_…`).
        code: Option<String>,
    },
}

/// Whether the account may open circles.
#[derive(Serialize)]
struct Facilitating {
    enrolment_required: bool,
    enrolled_at: Option<i64>,
}

impl Output for Facilitating {
    fn text(&self) -> String {
        match (self.enrolled_at, self.enrolment_required) {
            (Some(at), _) => format!(
                "this account is enrolled as a facilitator (since {}): it may open circles",
                when(at)
            ),
            (None, true) => "this server lets only enrolled facilitators open circles: ask its \
                             operator for a code, then `hearth facilitator <code>`"
                .to_owned(),
            (None, false) => "anyone may open circles on this server".to_owned(),
        }
    }
}

/// `register` on a profile that has a device already.
#[derive(Serialize)]
struct AlreadyRegistered {
    device_id: DeviceId,
    already: bool,
}

impl Output for AlreadyRegistered {
    fn text(&self) -> String {
        format!(
            "this profile is registered already, as device {}",
            self.device_id
        )
    }
}

/// A new device, on a new account or (`linked`) on the caller's.
#[derive(Serialize)]
struct Registered {
    device_id: DeviceId,
    account_id: Option<AccountId>,
    #[serde(skip)]
    linked: bool,
}

impl Output for Registered {
    fn text(&self) -> String {
        if self.linked {
            format!(
                "registered device {} on your account; your other device adds it to your \
                 circles the next time it syncs",
                self.device_id
            )
        } else {
            format!("registered device {}", self.device_id)
        }
    }
}

/// A one-time token for linking another device.
#[derive(Serialize)]
struct LinkToken {
    link_token: String,
}

impl Output for LinkToken {
    fn text(&self) -> String {
        format!(
            "on the new device: hearth --profile <name> register --link {}",
            self.link_token
        )
    }
}

/// A circle as listed: its id, its title, and for a past one whether the
/// device was removed (or left).
#[derive(Serialize)]
pub(crate) struct CircleEntry {
    pub circle_id: CircleId,
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<bool>,
}

impl CircleEntry {
    /// The entry of a circle, with its title as this device knows it.
    pub async fn of(client: &Client, circle_id: CircleId, removed: Option<bool>) -> Result<Self> {
        let title = client.title(&circle_id).await?;
        Ok(Self {
            circle_id,
            title,
            removed,
        })
    }

    /// `Title  id  (you left)`.
    pub fn line(&self) -> String {
        let state = match self.removed {
            Some(true) => "  (you were removed)",
            Some(false) => "  (you left)",
            None => "",
        };
        format!(
            "{}  {}{state}",
            self.title.as_deref().unwrap_or("(untitled)"),
            self.circle_id
        )
    }
}

/// The circles this device was in, with whether it was removed or left.
pub(crate) async fn past_circles(client: &Client) -> Result<Vec<CircleEntry>> {
    let mut past = Vec::new();
    for (circle_id, removed) in client.past_circles().await? {
        past.push(CircleEntry::of(client, circle_id, Some(removed)).await?);
    }
    Ok(past)
}

/// This device, its circles and its KeyPackage pool.
#[derive(Serialize)]
struct Status {
    device_id: Option<DeviceId>,
    circles: Vec<CircleEntry>,
    past_circles: Vec<CircleEntry>,
    joined: Vec<CircleId>,
    key_packages: u32,
    #[serde(skip)]
    joined_titles: Vec<String>,
}

impl Output for Status {
    fn text(&self) -> String {
        let mut out = format!(
            "device {}\n{} KeyPackages waiting for invitations\n",
            self.device_id.map(|d| d.to_string()).unwrap_or_default(),
            self.key_packages
        );
        for title in &self.joined_titles {
            out.push_str(&format!("joined {title}\n"));
        }
        if self.circles.is_empty() {
            out.push_str("in no circles yet\n");
        }
        for circle in self.circles.iter().chain(&self.past_circles) {
            out.push_str(&circle.line());
            out.push('\n');
        }
        out.trim_end().to_owned()
    }
}

/// A device taken out of the account.
#[derive(Serialize)]
struct Revoked {
    revoked: DeviceId,
}

impl Output for Revoked {
    fn text(&self) -> String {
        format!(
            "revoked {}: it is signed out, out of every circle, and out of the encryption of \
             the circles this device shares with it (others' devices remove it elsewhere on \
             their next sync)",
            self.revoked
        )
    }
}

impl Output for DeviceList {
    fn text(&self) -> String {
        self.devices
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
    }
}

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: AccountCommand, j: bool) -> Result<()> {
    match command {
        AccountCommand::Register { link, name } => {
            if let Some(device_id) = client.device_id().await? {
                say(
                    j,
                    &AlreadyRegistered {
                        device_id,
                        already: true,
                    },
                );
                return Ok(());
            }
            let device_id = client.register(link.as_deref()).await?;
            if let Some(name) = name {
                client.set_display_name(&name).await?;
            }
            let account_id = client.account_id().await?;
            say(
                j,
                &Registered {
                    device_id,
                    account_id,
                    linked: link.is_some(),
                },
            );
        }
        AccountCommand::Link => {
            let link_token = client.link_token().await?;
            say(j, &LinkToken { link_token });
        }
        AccountCommand::Status => {
            let synced = client.sync_all().await?;
            let joined = synced.joined;
            let pool = match synced.key_packages {
                Some(pool) => pool,
                None => client.top_up_key_packages().await?,
            };
            let device_id = client.device_id().await?;
            let mut circles = Vec::new();
            for circle_id in client.circles().await? {
                circles.push(CircleEntry::of(client, circle_id, None).await?);
            }
            let past_circles = past_circles(client).await?;
            let mut joined_titles = Vec::new();
            for circle in &joined {
                joined_titles.push(title_of(client, circle).await);
            }
            say(
                j,
                &Status {
                    device_id,
                    circles,
                    past_circles,
                    joined,
                    key_packages: pool.available,
                    joined_titles,
                },
            );
        }
        AccountCommand::Facilitator { code } => {
            let status = match code {
                Some(code) => client.enrol_as_facilitator(&code).await?,
                None => client.facilitator_status().await?,
            };
            say(
                j,
                &Facilitating {
                    enrolment_required: status.enrolment_required,
                    enrolled_at: status.enrolled_at,
                },
            );
        }
        AccountCommand::Devices { revoke } => {
            if let Some(revoked) = revoke {
                client.revoke_device(revoked).await?;
                say(j, &Revoked { revoked });
                return Ok(());
            }
            say(j, &client.devices().await?);
        }
    }
    Ok(())
}
