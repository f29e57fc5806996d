//! Bringing people in: invites, join requests, approving and declining.

use crate::{Output, parse_duration, say, when};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::Client;
use hearth_protocol::circles::{CreateInvite, InviteInfo};
use hearth_protocol::{CircleId, DeviceId};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Subcommand)]
pub enum EnrollmentCommand {
    /// Mint an invite link to a circle (facilitators).
    Invite {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// How many people may use it (default 1).
        #[arg(long)]
        uses: Option<u32>,
        /// How long it lasts: 90m, 12h, 7d or seconds (default 7 days, at
        /// most 30 days).
        #[arg(long, value_parser = parse_duration)]
        expires: Option<u64>,
    },
    /// A circle's open invites (facilitators); --revoke ID stops one.
    Invites {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// Revoke this invite: its link stops working.
        #[arg(long)]
        revoke: Option<uuid::Uuid>,
    },
    /// Ask to join a circle with an invite link.
    Join {
        /// The link, as the facilitator shared it.
        link: String,
        /// An introduction only the facilitator can read.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Join requests waiting in a circle (facilitators).
    Requests {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
    },
    /// Approve a join request (facilitators).
    Approve {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The request.
        request: uuid::Uuid,
    },
    /// Decline a join request (facilitators).
    Decline {
        /// The circle.
        #[arg(allow_hyphen_values = true)]
        circle: CircleId,
        /// The request.
        request: uuid::Uuid,
    },
}

/// A new invite link.
#[derive(Serialize)]
struct NewInvite {
    link: String,
    invite_id: Uuid,
    max_uses: u32,
    expires_at: i64,
    #[serde(skip)]
    circle: CircleId,
}

impl Output for NewInvite {
    fn text(&self) -> String {
        let people = if self.max_uses == 1 {
            "one person".to_owned()
        } else {
            format!("{} people", self.max_uses)
        };
        format!(
            "an invite for {people}, valid until {} (revoke it with `hearth invites {} --revoke \
             {}`); share this link out of band:\n{}",
            when(self.expires_at),
            self.circle,
            self.invite_id,
            self.link
        )
    }
}

/// An invite revoked.
#[derive(Serialize)]
struct InviteRevoked {
    revoked: Uuid,
}

impl Output for InviteRevoked {
    fn text(&self) -> String {
        "revoked: its link no longer works".to_owned()
    }
}

/// A circle's open invites.
#[derive(Serialize)]
struct Invites {
    invites: Vec<InviteInfo>,
}

impl Output for Invites {
    fn text(&self) -> String {
        if self.invites.is_empty() {
            return "no open invites".to_owned();
        }
        self.invites
            .iter()
            .map(|i| {
                format!(
                    "{}  {} of {} used, until {}",
                    i.invite_id,
                    i.uses,
                    i.max_uses,
                    when(i.expires_at)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A join request sent.
#[derive(Serialize)]
struct Asked {
    join_request_id: Uuid,
}

impl Output for Asked {
    fn text(&self) -> String {
        "asked to join; once the facilitator approves, `hearth status` brings you in".to_owned()
    }
}

/// One pending join request, its note decrypted.
#[derive(Serialize)]
struct Request {
    join_request_id: Uuid,
    device_ids: Vec<DeviceId>,
    note: Option<String>,
}

/// A circle's pending join requests.
#[derive(Serialize)]
struct Requests {
    join_requests: Vec<Request>,
}

impl Output for Requests {
    fn text(&self) -> String {
        if self.join_requests.is_empty() {
            return "no join requests".to_owned();
        }
        self.join_requests
            .iter()
            .map(|r| {
                format!(
                    "{}  {}",
                    r.join_request_id,
                    r.note
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .unwrap_or("(no note)")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A join request approved: the devices the commit added.
#[derive(Serialize)]
struct Approved {
    approved: Uuid,
    added: Vec<DeviceId>,
}

impl Output for Approved {
    fn text(&self) -> String {
        if self.added.is_empty() {
            "everyone that request names is in the circle already; it is closed".to_owned()
        } else {
            "approved: they join the next time their device checks in".to_owned()
        }
    }
}

/// A join request declined.
#[derive(Serialize)]
struct Declined {
    declined: Uuid,
}

impl Output for Declined {
    fn text(&self) -> String {
        "declined".to_owned()
    }
}

/// Runs one of these commands.
pub async fn run(client: &Arc<Client>, command: EnrollmentCommand, j: bool) -> Result<()> {
    match command {
        EnrollmentCommand::Invite {
            circle,
            uses,
            expires,
        } => {
            let options = CreateInvite {
                expires_in_secs: expires,
                max_uses: uses,
            };
            let invite = client.create_invite_with(&circle, options).await?;
            say(
                j,
                &NewInvite {
                    link: invite.link.clone(),
                    invite_id: invite.id,
                    max_uses: invite.max_uses,
                    expires_at: invite.expires_at,
                    circle,
                },
            );
        }
        EnrollmentCommand::Invites { circle, revoke } => {
            if let Some(revoked) = revoke {
                client.revoke_invite(&circle, revoked).await?;
                say(j, &InviteRevoked { revoked });
                return Ok(());
            }
            let invites = client.invites(&circle).await?;
            say(j, &Invites { invites });
        }
        EnrollmentCommand::Join { link, note } => {
            let join_request_id = client.redeem_invite(&link, &note).await?;
            say(j, &Asked { join_request_id });
        }
        EnrollmentCommand::Requests { circle } => {
            let join_requests = client
                .join_requests(&circle)
                .await?
                .into_iter()
                .map(|r| Request {
                    join_request_id: r.id,
                    device_ids: r.device_ids,
                    note: r.note,
                })
                .collect();
            say(j, &Requests { join_requests });
        }
        EnrollmentCommand::Approve { circle, request } => {
            let added = client.approve(&circle, request).await?;
            say(
                j,
                &Approved {
                    approved: request,
                    added,
                },
            );
        }
        EnrollmentCommand::Decline { circle, request } => {
            client.decline(&circle, request).await?;
            say(j, &Declined { declined: request });
        }
    }
    Ok(())
}
