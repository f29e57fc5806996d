//! Bringing people in: invites, join requests, approving and declining.

use crate::{parse_duration, say, when};
use anyhow::Result;
use clap::Subcommand;
use hearth_client::Client;
use hearth_protocol::CircleId;
use hearth_protocol::circles::CreateInvite;
use serde_json::{Value, json};
use std::sync::Arc;

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
                json!({ "link": invite.link, "invite_id": invite.id, "max_uses": invite.max_uses, "expires_at": invite.expires_at }),
                || {
                    let people = if invite.max_uses == 1 {
                        "one person".to_owned()
                    } else {
                        format!("{} people", invite.max_uses)
                    };
                    format!(
                        "an invite for {people}, valid until {} (revoke it with `hearth invites \
                         {circle} --revoke {}`); share this link out of band:\n{}",
                        when(invite.expires_at),
                        invite.id,
                        invite.link
                    )
                },
            );
        }
        EnrollmentCommand::Invites { circle, revoke } => {
            if let Some(invite) = revoke {
                client.revoke_invite(&circle, invite).await?;
                say(j, json!({ "revoked": invite }), || {
                    "revoked: its link no longer works".to_owned()
                });
                return Ok(());
            }
            let invites = client.invites(&circle).await?;
            let value = serde_json::to_value(&invites)?;
            say(j, json!({ "invites": value }), || {
                if invites.is_empty() {
                    return "no open invites".to_owned();
                }
                invites
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
            });
        }
        EnrollmentCommand::Join { link, note } => {
            let request = client.redeem_invite(&link, &note).await?;
            say(j, json!({ "join_request_id": request }), || {
                "asked to join; once the facilitator approves, `hearth status` brings you in"
                    .to_owned()
            });
        }
        EnrollmentCommand::Requests { circle } => {
            let requests = client.join_requests(&circle).await?;
            let value: Vec<Value> = requests
                .iter()
                .map(|r| json!({ "join_request_id": r.id, "device_ids": r.device_ids, "note": r.note }))
                .collect();
            say(j, json!({ "join_requests": value }), || {
                if requests.is_empty() {
                    return "no join requests".to_owned();
                }
                requests
                    .iter()
                    .map(|r| {
                        format!(
                            "{}  {}",
                            r.id,
                            r.note
                                .as_deref()
                                .filter(|n| !n.is_empty())
                                .unwrap_or("(no note)")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        EnrollmentCommand::Approve { circle, request } => {
            let added = client.approve(&circle, request).await?;
            say(j, json!({ "approved": request, "added": added }), || {
                if added.is_empty() {
                    "everyone that request names is in the circle already; it is closed".to_owned()
                } else {
                    "approved: they join the next time their device checks in".to_owned()
                }
            });
        }
        EnrollmentCommand::Decline { circle, request } => {
            client.decline(&circle, request).await?;
            say(j, json!({ "declined": request }), || "declined".to_owned());
        }
    }
    Ok(())
}
