//! Enrollment: invite links with a sealed introduction note, join requests,
//! approving and declining. The link format and the note's sealing are the
//! protocol's (`hearth_protocol::invite`): the facilitator's client keeps the
//! key per invite and opens notes with it; the server stores only the sealed
//! bytes.

use crate::{Client, ClientError, Result, random};
use hearth_protocol::circles::{CreateInvite, InviteInfo, RedeemInvite};
use hearth_protocol::invite::{self as link, InviteLink as LinkParts};
use hearth_protocol::{CircleId, DeviceId, ErrorCode};

/// A minted invite.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    /// For revoking it.
    pub id: uuid::Uuid,
    /// `hearth:invite/<token>#<note key>`, to share out of band.
    pub link: String,
    /// How many people may use it.
    pub max_uses: u32,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

impl std::fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteLink")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A pending join request as the facilitator's client shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequestView {
    /// Approve or decline by this id.
    pub id: uuid::Uuid,
    /// The devices that would join.
    pub device_ids: Vec<DeviceId>,
    /// The introduction note, decrypted (None if absent or unreadable).
    pub note: Option<String>,
}

impl Client {
    /// Mints an invite link. The link carries the token and, after `#`, a key
    /// the invitee encrypts an introduction note with; the server never sees
    /// the key.
    pub async fn create_invite(&self, circle: &CircleId) -> Result<String> {
        Ok(self
            .create_invite_with(circle, CreateInvite::default())
            .await?
            .link)
    }

    /// Mints an invite link with its own lifetime and number of uses; the
    /// answer carries the invite's id for revoking it.
    pub async fn create_invite_with(
        &self,
        circle: &CircleId,
        options: CreateInvite,
    ) -> Result<InviteLink> {
        let invite = self
            .authorized()
            .await?
            .create_invite(circle, &options)
            .await?;
        let key: [u8; link::NOTE_KEY_LEN] = random()?;
        let (id, circle) = (invite.invite_id, circle.clone());
        let (max_uses, expires_at) = (invite.max_uses, invite.expires_at);
        self.with(move |s| s.store.save_note_key(id, &circle, &key))
            .await?;
        let link = LinkParts {
            token: invite.token,
            note_key: key,
        }
        .to_link();
        Ok(InviteLink {
            id,
            link,
            max_uses,
            expires_at,
        })
    }

    /// The circle's invites (facilitators).
    pub async fn invites(&self, circle: &CircleId) -> Result<Vec<InviteInfo>> {
        Ok(self.authorized().await?.invites(circle).await?.invites)
    }

    /// Revokes an invite (facilitators): its link stops working.
    pub async fn revoke_invite(&self, circle: &CircleId, invite: uuid::Uuid) -> Result<()> {
        self.authorized().await?.revoke_invite(circle, invite).await
    }

    /// Redeems an invite link with an introduction note.
    pub async fn redeem_invite(&self, link: &str, note: &str) -> Result<uuid::Uuid> {
        let parts = LinkParts::parse(link).ok_or(ClientError::BadInviteLink)?;
        let nonce: [u8; link::NOTE_NONCE_LEN] = random()?;
        let sealed = link::seal_note(&parts.note_key, &nonce, note.as_bytes())?;
        let request = RedeemInvite {
            token: parts.token,
            note: Some(sealed.into()),
        };
        let created = self.authorized().await?.redeem_invite(&request).await?;
        Ok(created.join_request_id)
    }

    /// Pending join requests, with their notes decrypted.
    pub async fn join_requests(&self, circle: &CircleId) -> Result<Vec<JoinRequestView>> {
        let list = self.authorized().await?.join_requests(circle).await?;
        let circle = circle.clone();
        self.with(move |s| {
            let keys = s.store.note_keys(&circle)?;
            Ok(list
                .join_requests
                .into_iter()
                .map(|r| JoinRequestView {
                    id: r.join_request_id,
                    device_ids: r.device_ids,
                    note: r.note.and_then(|sealed| {
                        keys.iter()
                            .find_map(|key| link::open_note(key, sealed.as_slice()))
                    }),
                })
                .collect())
        })
        .await
    }

    /// Declines a join request.
    pub async fn decline(&self, circle: &CircleId, request: uuid::Uuid) -> Result<()> {
        self.authorized()
            .await?
            .decline_join_request(circle, request)
            .await
    }

    /// Approves a join request: claims the devices' KeyPackages, commits the
    /// Add and posts the bundle with the Welcome. Retries on `stale_epoch`.
    /// Devices of the request that are in the circle already (a member's
    /// second device asking again) are left out; when that leaves none, the
    /// request is settled by declining it. Returns the devices added (none
    /// in that case).
    pub async fn approve(&self, circle: &CircleId, request: uuid::Uuid) -> Result<Vec<DeviceId>> {
        // The claim names the request: the server looks its devices up.
        match self.add(circle, &[], Some(request)).await {
            Ok((follow_ups, added)) if !added.is_empty() => {
                self.drive(follow_ups).await?;
                Ok(added)
            }
            Ok(_) => Err(ClientError::NoKeyPackages),
            Err(err) if err.code() == Some(ErrorCode::NotFound) => {
                Err(ClientError::UnknownJoinRequest)
            }
            // A device of the request is in the circle already (a member's
            // second device asking again): look at the request and the roster.
            Err(err) if err.code() == Some(ErrorCode::DeviceOnRoster) => {
                self.approve_the_rest(circle, request).await
            }
            Err(err) => Err(err),
        }
    }

    /// Approves a join request some of whose devices are on the roster
    /// already: the others are added; with none left, it is declined.
    async fn approve_the_rest(
        &self,
        circle: &CircleId,
        request: uuid::Uuid,
    ) -> Result<Vec<DeviceId>> {
        let devices = self
            .join_requests(circle)
            .await?
            .into_iter()
            .find(|r| r.id == request)
            .map(|r| r.device_ids)
            .ok_or(ClientError::UnknownJoinRequest)?;
        // The roster, not the MLS group: a device that left keeps its leaf
        // until someone removes it, and may be asking to come back.
        let roster = self.authorized().await?.circle(circle).await?.roster;
        let missing: Vec<DeviceId> = devices
            .into_iter()
            .filter(|d| !roster.iter().any(|r| r.device_id == *d))
            .collect();
        if missing.is_empty() {
            self.decline(circle, request).await?;
            return Ok(missing);
        }
        self.add_devices(circle, &missing, Some(request)).await?;
        Ok(missing)
    }
}
