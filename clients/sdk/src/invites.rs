//! Enrollment: invite links with a sealed introduction note, join requests,
//! approving and declining.
//!
//! A link is `hearth:invite/<token>#<key>`: the fragment is a 32-byte key the
//! invitee seals its note with (ChaCha20-Poly1305, random 12-byte nonce
//! before the ciphertext). The facilitator's client keeps the key per invite
//! and opens notes with it; the server stores only the sealed bytes.

use crate::{Client, ClientError, Result, random};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_protocol::circles::{CreateInvite, InviteInfo, RedeemInvite};
use hearth_protocol::{CircleId, DeviceId};
use openmls::prelude::{AeadType, OpenMlsCrypto as _, OpenMlsProvider as _};
use openmls_rust_crypto::RustCrypto;

const LINK_PREFIX: &str = "hearth:invite/";
const NOTE_AAD: &[u8] = b"hearth/v1 join note";
const NONCE_LEN: usize = 12;

/// A minted invite.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    /// For revoking it.
    pub id: uuid::Uuid,
    /// `hearth:invite/<token>#<note key>`, to share out of band.
    pub link: String,
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

/// Seals a note to the invite's key: nonce, then ciphertext.
fn seal(crypto: &RustCrypto, key: &[u8], nonce: &[u8; NONCE_LEN], note: &[u8]) -> Result<Vec<u8>> {
    let sealed = crypto
        .aead_encrypt(AeadType::ChaCha20Poly1305, key, note, nonce, NOTE_AAD)
        .map_err(hearth_protocol::mls::failed("sealing the note"))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// Opens a sealed note with whichever of the keys it was sealed to.
fn open(crypto: &RustCrypto, keys: &[Vec<u8>], sealed: &[u8]) -> Option<String> {
    let (nonce, ciphertext) = sealed.split_at_checked(NONCE_LEN)?;
    keys.iter().find_map(|key| {
        let plain = crypto
            .aead_decrypt(AeadType::ChaCha20Poly1305, key, ciphertext, nonce, NOTE_AAD)
            .ok()?;
        String::from_utf8(plain).ok()
    })
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
        let key: [u8; 32] = random()?;
        let (id, circle) = (invite.invite_id, circle.clone());
        self.with(move |s| s.store.save_note_key(id, &circle, &key))
            .await?;
        let link = format!(
            "{LINK_PREFIX}{}#{}",
            invite.token,
            URL_SAFE_NO_PAD.encode(key)
        );
        Ok(InviteLink { id, link })
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
        let rest = link
            .strip_prefix(LINK_PREFIX)
            .ok_or(ClientError::BadInviteLink)?;
        let (token, key) = rest.split_once('#').ok_or(ClientError::BadInviteLink)?;
        let key = URL_SAFE_NO_PAD
            .decode(key)
            .map_err(|_| ClientError::BadInviteLink)?;
        let nonce: [u8; NONCE_LEN] = random()?;
        let note = note.as_bytes().to_vec();
        let sealed = self
            .with(move |s| seal(s.provider.crypto(), &key, &nonce, &note))
            .await?;
        let request = RedeemInvite {
            token: token.to_owned(),
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
                    note: r
                        .note
                        .and_then(|sealed| open(s.provider.crypto(), &keys, sealed.as_slice())),
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
    pub async fn approve(&self, circle: &CircleId, request: uuid::Uuid) -> Result<()> {
        let devices = self
            .join_requests(circle)
            .await?
            .into_iter()
            .find(|r| r.id == request)
            .map(|r| r.device_ids)
            .ok_or(ClientError::UnknownJoinRequest)?;
        self.add_devices(circle, &devices, Some(request)).await
    }
}
