//! `hearth-client`: the SDK a Hearth app embeds.
//!
//! A [`Client`] is bound to a server URL and a data directory. It owns the
//! device's Ed25519 key (which is also its MLS signature key), its session,
//! its MLS state and its decrypted history, all on disk in that directory, and
//! turns "create a circle", "invite Sam", "send this", "what's new" into the
//! right API calls with real MLS.
//!
//! Layers: `api` speaks HTTP and keeps the session fresh; `store` is the
//! client's own SQLite; `mls` is openmls with persistent storage. Everything
//! that touches the disk runs on tokio's blocking pool, so no async task ever
//! blocks.
#![deny(missing_docs)]

mod api;
mod error;
mod live;
mod mls;
mod store;

pub use error::{ClientError, Result};
pub use live::Event;
pub use store::HistoryRow;

use api::Api;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_protocol::auth::{
    Challenge, Login, RegisterDevice, RegisteredDevice, SessionTokens, login_message,
    register_message,
};
use hearth_protocol::circles::{
    Accepted, CommitBundle, CreateCircle, CreateInvite, Invite, JoinRequestCreated,
    JoinRequestList, LogPage, RedeemInvite, SendMessage, WelcomeList,
};
use hearth_protocol::content::{Content, Envelope};
use hearth_protocol::key_packages::{
    ClaimedKeyPackages, KeyPackageCount, UploadKeyPackages, credential_identity,
};
use hearth_protocol::{AccountId, Base64Bytes, CircleId, DeviceId, ErrorCode};
use mls::Provider;
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store::{SessionRow, Store};

/// How many times an operation is rebuilt after `stale_epoch` before giving up.
const COMMIT_ATTEMPTS: usize = 8;
/// Keep at least this many KeyPackages on the server.
const KEY_PACKAGE_LOW_WATER: u32 = 10;
/// Top the pool up to this many.
const KEY_PACKAGE_TARGET: usize = 30;
const NOTE_AAD: &[u8] = b"hearth/v1 join note";

struct State {
    store: Store,
    provider: Provider,
}

/// A circle's policy at creation; `None` takes the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CirclePolicy {
    /// Members besides facilitators (server default 12).
    pub max_members: Option<u32>,
    /// Seconds the server keeps undelivered entries (server default 30 days).
    pub retention_secs: Option<u64>,
}

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

/// A Hearth client: one device, one data directory, one server.
pub struct Client {
    api: Api,
    state: Arc<Mutex<State>>,
    dir: PathBuf,
    refresh: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| ClientError::Unexpected("no randomness"))?;
    Ok(bytes)
}

fn wire(message: &MlsMessageOut) -> Result<Base64Bytes> {
    Ok(message
        .tls_serialize_detached()
        .map_err(ClientError::mls)?
        .into())
}

impl Client {
    /// Opens (creating) the data directory and binds the client to `server`
    /// (for example `http://127.0.0.1:8080`).
    pub async fn open(server: &str, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let opened = dir.clone();
        let state = tokio::task::spawn_blocking(move || -> Result<State> {
            std::fs::create_dir_all(&opened)?;
            Ok(State {
                store: Store::open(&opened)?,
                provider: Provider::open(&opened)?,
            })
        })
        .await
        .map_err(|_| ClientError::Task)??;
        Ok(Self {
            api: Api::new(server)?,
            state: Arc::new(Mutex::new(state)),
            dir,
            refresh: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs `f` on the state, on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = state.lock().map_err(|_| ClientError::Task)?;
            f(&mut guard)
        })
        .await
        .map_err(|_| ClientError::Task)?
    }

    /// This device's id, once registered.
    pub async fn device_id(&self) -> Result<Option<DeviceId>> {
        self.with(|s| Ok(s.store.device()?.map(|d| d.device_id)))
            .await
    }

    /// This device's account, once registered.
    pub async fn account_id(&self) -> Result<Option<AccountId>> {
        self.with(|s| Ok(s.store.device()?.map(|d| d.account_id)))
            .await
    }

    async fn signing_key(&self) -> Result<(DeviceId, SigningKey)> {
        self.with(|s| {
            let device = s.store.device()?.ok_or(ClientError::NotRegistered)?;
            Ok((
                device.device_id,
                SigningKey::from_bytes(device.seed.expose_secret()),
            ))
        })
        .await
    }

    async fn signer(&self) -> Result<(DeviceId, SignatureKeyPair)> {
        let (device, key) = self.signing_key().await?;
        let signer = SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            key.to_bytes().to_vec(),
            key.verifying_key().to_bytes().to_vec(),
        );
        Ok((device, signer))
    }

    /// Registers this device on a new account (or, with `link_token`, on the
    /// account that minted it), logs in and publishes KeyPackages.
    pub async fn register(&self, link_token: Option<&str>) -> Result<DeviceId> {
        if let Some(device) = self.device_id().await? {
            return Ok(device);
        }
        let seed: [u8; 32] = random()?;
        let key = SigningKey::from_bytes(&seed);
        let challenge: Challenge = self.api.post("/v1/challenges", None, &()).await?;
        let public_key = key.verifying_key().to_bytes();
        let signature = key.sign(&register_message(
            challenge.challenge.as_slice(),
            &public_key,
        ));
        let registered: RegisteredDevice = self
            .api
            .post(
                "/v1/devices",
                None,
                &RegisterDevice {
                    public_key: public_key.as_slice().into(),
                    challenge: challenge.challenge,
                    signature: signature.to_bytes().as_slice().into(),
                    link_token: link_token.map(str::to_owned),
                },
            )
            .await?;
        let (device, account) = (registered.device_id, registered.account_id);
        self.with(move |s| s.store.save_device(device, account, &seed))
            .await?;
        self.login().await?;
        self.top_up_key_packages().await?;
        Ok(device)
    }

    async fn login(&self) -> Result<String> {
        let (device_id, key) = self.signing_key().await?;
        let challenge: Challenge = self.api.post("/v1/challenges", None, &()).await?;
        let signature = key.sign(&login_message(challenge.challenge.as_slice(), &device_id));
        let tokens: SessionTokens = self
            .api
            .post(
                "/v1/sessions",
                None,
                &Login {
                    device_id,
                    challenge: challenge.challenge,
                    signature: signature.to_bytes().as_slice().into(),
                },
            )
            .await?;
        self.keep(tokens).await
    }

    async fn keep(&self, tokens: SessionTokens) -> Result<String> {
        let access = tokens.access_token.clone();
        let row = SessionRow {
            access_expires: now() + i64::try_from(tokens.expires_in).unwrap_or(0),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        };
        self.with(move |s| s.store.save_session(&row)).await?;
        Ok(access)
    }

    /// A current access token: the stored one, refreshed when it is about to
    /// expire, or a fresh login when the refresh token is no good.
    async fn token(&self) -> Result<String> {
        let _one_at_a_time = self.refresh.lock().await;
        let session = self.with(|s| s.store.session()).await?;
        match session {
            Some(session) if session.access_expires > now() + 60 => Ok(session.access_token),
            Some(session) => {
                let body = serde_json::json!({ "refresh_token": session.refresh_token });
                match self
                    .api
                    .post::<SessionTokens>("/v1/sessions/refresh", None, &body)
                    .await
                {
                    Ok(tokens) => self.keep(tokens).await,
                    Err(err) if err.code() == Some(ErrorCode::Unauthorized) => {
                        self.with(|s| s.store.clear_session()).await?;
                        self.login().await
                    }
                    Err(err) => Err(err),
                }
            }
            None => self.login().await,
        }
    }

    /// Mints a one-time link token for adding another device to this account.
    pub async fn link_token(&self) -> Result<String> {
        let token = self.token().await?;
        let link: hearth_protocol::auth::LinkToken =
            self.api.post("/v1/link-tokens", Some(&token), &()).await?;
        Ok(link.link_token)
    }

    /// Tops the server's KeyPackage pool up when it runs low, and keeps a
    /// last-resort KeyPackage there.
    pub async fn top_up_key_packages(&self) -> Result<KeyPackageCount> {
        let token = self.token().await?;
        let count: KeyPackageCount = self.api.get("/v1/key-packages/count", &token).await?;
        if count.available >= KEY_PACKAGE_LOW_WATER && count.last_resort {
            return Ok(count);
        }
        let want = KEY_PACKAGE_TARGET.saturating_sub(count.available as usize);
        let need_last_resort = !count.last_resort;
        let (device, signer) = self.signer().await?;
        let upload = self
            .with(move |s| {
                let credential = CredentialWithKey {
                    credential: BasicCredential::new(credential_identity(&device)).into(),
                    signature_key: signer.public().into(),
                };
                let build = |last_resort: bool| -> Result<Base64Bytes> {
                    let capabilities = Capabilities::new(
                        None,
                        None,
                        Some(&[ExtensionType::LastResort]),
                        None,
                        None,
                    );
                    let mut builder = KeyPackage::builder().leaf_node_capabilities(capabilities);
                    if last_resort {
                        builder = builder.mark_as_last_resort();
                    }
                    let bundle = builder
                        .build(mls::CIPHERSUITE, &s.provider, &signer, credential.clone())
                        .map_err(ClientError::mls)?;
                    Ok(bundle
                        .key_package()
                        .tls_serialize_detached()
                        .map_err(ClientError::mls)?
                        .into())
                };
                Ok(UploadKeyPackages {
                    key_packages: (0..want).map(|_| build(false)).collect::<Result<_>>()?,
                    last_resort: if need_last_resort {
                        Some(build(true)?)
                    } else {
                        None
                    },
                })
            })
            .await?;
        let uploaded: hearth_protocol::key_packages::UploadedKeyPackages = self
            .api
            .post("/v1/key-packages", Some(&token), &upload)
            .await?;
        Ok(uploaded.pool)
    }

    /// Creates a circle: a new MLS group, registered with the server, with
    /// this device as facilitator.
    pub async fn create_circle(&self) -> Result<CircleId> {
        self.create_circle_with(CirclePolicy::default()).await
    }

    /// Creates a circle with its own policy (member limit, retention).
    pub async fn create_circle_with(&self, policy: CirclePolicy) -> Result<CircleId> {
        let id = CircleId::from_bytes(random::<16>()?.to_vec())
            .map_err(|_| ClientError::Unexpected("circle id"))?;
        let (device, signer) = self.signer().await?;
        let group_id = id.clone();
        let group_info = self
            .with(move |s| {
                let credential = CredentialWithKey {
                    credential: BasicCredential::new(credential_identity(&device)).into(),
                    signature_key: signer.public().into(),
                };
                let group = MlsGroup::new_with_group_id(
                    &s.provider,
                    &signer,
                    &mls::create_config(),
                    GroupId::from_slice(group_id.as_bytes()),
                    credential,
                )
                .map_err(ClientError::mls)?;
                let info = group
                    .export_group_info(s.provider.crypto(), &signer, true)
                    .map_err(ClientError::mls)?;
                s.store.set_cursor(&group_id, 0)?;
                wire(&info)
            })
            .await?;
        let token = self.token().await?;
        let _: hearth_protocol::circles::Circle = self
            .api
            .post(
                "/v1/circles",
                Some(&token),
                &CreateCircle {
                    circle_id: id.clone(),
                    max_members: policy.max_members,
                    retention_secs: policy.retention_secs,
                    group_info: Some(group_info),
                },
            )
            .await?;
        Ok(id)
    }

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
        let token = self.token().await?;
        let invite: Invite = self
            .api
            .post(
                &format!("/v1/circles/{circle}/invites"),
                Some(&token),
                &options,
            )
            .await?;
        let key: [u8; 32] = random()?;
        let circle = circle.clone();
        let id = invite.invite_id;
        self.with(move |s| s.store.save_note_key(id, &circle, &key))
            .await?;
        Ok(InviteLink {
            id,
            link: format!(
                "hearth:invite/{}#{}",
                invite.token,
                URL_SAFE_NO_PAD.encode(key)
            ),
        })
    }

    /// The circle's invites (facilitators).
    pub async fn invites(
        &self,
        circle: &CircleId,
    ) -> Result<Vec<hearth_protocol::circles::InviteInfo>> {
        let token = self.token().await?;
        let list: hearth_protocol::circles::InviteList = self
            .api
            .get(&format!("/v1/circles/{circle}/invites"), &token)
            .await?;
        Ok(list.invites)
    }

    /// Revokes an invite (facilitators): its link stops working.
    pub async fn revoke_invite(&self, circle: &CircleId, invite: uuid::Uuid) -> Result<()> {
        let token = self.token().await?;
        self.api
            .delete(&format!("/v1/circles/{circle}/invites/{invite}"), &token)
            .await
    }

    /// This account's devices.
    pub async fn devices(&self) -> Result<hearth_protocol::auth::DeviceList> {
        let token = self.token().await?;
        self.api.get("/v1/devices", &token).await
    }

    /// Redeems an invite link with an introduction note.
    pub async fn redeem_invite(&self, link: &str, note: &str) -> Result<uuid::Uuid> {
        let rest = link
            .strip_prefix("hearth:invite/")
            .ok_or(ClientError::BadInviteLink)?;
        let (invite_token, key) = rest.split_once('#').ok_or(ClientError::BadInviteLink)?;
        let key = URL_SAFE_NO_PAD
            .decode(key)
            .map_err(|_| ClientError::BadInviteLink)?;
        let nonce: [u8; 12] = random()?;
        let sealed = self
            .with({
                let note = note.as_bytes().to_vec();
                move |s| {
                    s.provider
                        .crypto()
                        .aead_encrypt(AeadType::ChaCha20Poly1305, &key, &note, &nonce, NOTE_AAD)
                        .map_err(ClientError::mls)
                }
            })
            .await?;
        let token = self.token().await?;
        let created: JoinRequestCreated = self
            .api
            .post(
                "/v1/invites/redeem",
                Some(&token),
                &RedeemInvite {
                    token: invite_token.to_owned(),
                    note: Some([nonce.as_slice(), &sealed].concat().into()),
                },
            )
            .await?;
        Ok(created.join_request_id)
    }

    /// Pending join requests, with their notes decrypted.
    pub async fn join_requests(&self, circle: &CircleId) -> Result<Vec<JoinRequestView>> {
        let token = self.token().await?;
        let list: JoinRequestList = self
            .api
            .get(&format!("/v1/circles/{circle}/join-requests"), &token)
            .await?;
        let circle = circle.clone();
        self.with(move |s| {
            let keys = s.store.note_keys(&circle)?;
            Ok(list
                .join_requests
                .into_iter()
                .map(|r| {
                    let note = r.note.as_ref().and_then(|sealed| {
                        let bytes = sealed.as_slice();
                        let (nonce, ciphertext) = bytes.split_at_checked(12)?;
                        keys.iter().find_map(|key| {
                            s.provider
                                .crypto()
                                .aead_decrypt(
                                    AeadType::ChaCha20Poly1305,
                                    key,
                                    ciphertext,
                                    nonce,
                                    NOTE_AAD,
                                )
                                .ok()
                                .and_then(|plain| String::from_utf8(plain).ok())
                        })
                    });
                    JoinRequestView {
                        id: r.join_request_id,
                        device_ids: r.device_ids,
                        note,
                    }
                })
                .collect())
        })
        .await
    }

    /// Declines a join request.
    pub async fn decline(&self, circle: &CircleId, request: uuid::Uuid) -> Result<()> {
        let token = self.token().await?;
        self.api
            .delete(
                &format!("/v1/circles/{circle}/join-requests/{request}"),
                &token,
            )
            .await
    }

    /// Approves a join request: claims the devices' KeyPackages, commits the
    /// Add and posts the bundle with the Welcome. Retries on `stale_epoch`.
    pub async fn approve(&self, circle: &CircleId, request: uuid::Uuid) -> Result<()> {
        let requests = self.join_requests(circle).await?;
        let devices = requests
            .into_iter()
            .find(|r| r.id == request)
            .map(|r| r.device_ids)
            .ok_or(ClientError::Unexpected("no such join request"))?;
        self.add_devices(circle, &devices, Some(request)).await
    }

    /// Adds devices to a circle (facilitators).
    pub async fn add_devices(
        &self,
        circle: &CircleId,
        devices: &[DeviceId],
        join_request: Option<uuid::Uuid>,
    ) -> Result<()> {
        let token = self.token().await?;
        let claimed: ClaimedKeyPackages = self
            .api
            .post(
                "/v1/key-packages/claim",
                Some(&token),
                &serde_json::json!({ "device_ids": devices }),
            )
            .await?;
        let added: Vec<DeviceId> = claimed.key_packages.iter().map(|k| k.device_id).collect();
        let key_packages: Vec<Vec<u8>> = claimed
            .key_packages
            .into_iter()
            .map(|k| k.key_package.into_inner())
            .collect();
        self.commit_with_retry(circle, move |s, group, signer| {
            let parsed = key_packages
                .iter()
                .map(|bytes| {
                    KeyPackageIn::tls_deserialize_exact(bytes)
                        .map_err(ClientError::mls)?
                        .validate(s.provider.crypto(), ProtocolVersion::Mls10)
                        .map_err(ClientError::mls)
                })
                .collect::<Result<Vec<_>>>()?;
            let (commit, welcome, info) = group
                .add_members(&s.provider, signer, &parsed)
                .map_err(ClientError::mls)?;
            Ok((
                commit,
                Some(welcome),
                info,
                added.clone(),
                Vec::new(),
                join_request,
            ))
        })
        .await?;
        // The newcomers cannot read what came before them: say who we are.
        self.announce(circle).await
    }

    /// Brings this account's other devices into every circle this device is
    /// in: claims their KeyPackages and commits the Add itself (a member may
    /// add devices of its own account). Returns the circles changed.
    pub async fn add_my_other_devices(&self) -> Result<Vec<CircleId>> {
        let (me, _) = self.signing_key().await?;
        let token = self.token().await?;
        let mine: hearth_protocol::auth::DeviceList = self.api.get("/v1/devices", &token).await?;
        let mut changed = Vec::new();
        for circle in self.circles().await? {
            let seen: hearth_protocol::circles::Circle = self
                .api
                .get(&format!("/v1/circles/{circle}"), &token)
                .await?;
            let missing: Vec<DeviceId> = mine
                .devices
                .iter()
                .map(|d| d.device_id)
                .filter(|d| *d != me && !seen.roster.iter().any(|r| r.device_id == *d))
                .collect();
            if !missing.is_empty() {
                self.add_devices(&circle, &missing, None).await?;
                changed.push(circle);
            }
        }
        Ok(changed)
    }

    /// Removes members' devices (facilitators).
    pub async fn remove_devices(&self, circle: &CircleId, devices: &[DeviceId]) -> Result<()> {
        self.remove_from_group(circle, devices.to_vec(), true).await
    }

    /// Removes MLS leaves of devices the server's roster no longer holds.
    async fn remove_leaves(&self, circle: &CircleId, devices: Vec<DeviceId>) -> Result<()> {
        self.remove_from_group(circle, devices, false).await
    }

    async fn remove_from_group(
        &self,
        circle: &CircleId,
        devices: Vec<DeviceId>,
        from_roster: bool,
    ) -> Result<()> {
        self.commit_with_retry(circle, move |s, group, signer| {
            let leaves: Vec<LeafNodeIndex> = group
                .members()
                .filter(|m| {
                    devices
                        .iter()
                        .any(|d| credential_identity(d) == m.credential.serialized_content())
                })
                .map(|m| m.index)
                .collect();
            let (commit, _, info) = group
                .remove_members(&s.provider, signer, &leaves)
                .map_err(ClientError::mls)?;
            let declared = if from_roster {
                devices.clone()
            } else {
                Vec::new()
            };
            Ok((commit, None, info, Vec::new(), declared, None))
        })
        .await
    }

    /// Leaves a circle: a self-update commit that takes this device off the
    /// roster, after which the server delivers nothing more of the circle. The
    /// facilitator's client removes the leftover leaf from the MLS group.
    pub async fn leave(&self, circle: &CircleId) -> Result<()> {
        let (me, _) = self.signing_key().await?;
        self.commit_with_retry(circle, move |s, group, signer| {
            let bundle = group
                .self_update(&s.provider, signer, LeafNodeParameters::default())
                .map_err(ClientError::mls)?;
            let (commit, _, info) = bundle.into_contents();
            Ok((commit, None, info, Vec::new(), vec![me], None))
        })
        .await?;
        let circle = circle.clone();
        self.with(move |s| s.store.forget_circle(&circle)).await
    }

    /// Rotates this device's key material in the circle (a self-update commit).
    pub async fn update(&self, circle: &CircleId) -> Result<()> {
        self.commit_with_retry(circle, |s, group, signer| {
            let bundle = group
                .self_update(&s.provider, signer, LeafNodeParameters::default())
                .map_err(ClientError::mls)?;
            let (commit, _, info) = bundle.into_contents();
            Ok((commit, None, info, Vec::new(), Vec::new(), None))
        })
        .await
    }

    /// Builds a commit with `build`, posts it, and on `stale_epoch` syncs and
    /// builds it again on the new epoch, so the user's intent survives a race.
    async fn commit_with_retry<F>(&self, circle: &CircleId, build: F) -> Result<()>
    where
        F: Fn(
                &mut State,
                &mut MlsGroup,
                &SignatureKeyPair,
            ) -> Result<(
                MlsMessageOut,
                Option<MlsMessageOut>,
                Option<openmls::messages::group_info::GroupInfo>,
                Vec<DeviceId>,
                Vec<DeviceId>,
                Option<uuid::Uuid>,
            )> + Send
            + Sync
            + 'static,
    {
        let build = Arc::new(build);
        for _ in 0..COMMIT_ATTEMPTS {
            self.sync(circle).await?;
            let (_, signer) = self.signer().await?;
            let (circle_id, build) = (circle.clone(), build.clone());
            let bundle = self
                .with(move |s| {
                    let mut group = load(s, &circle_id)?;
                    let epoch = group.epoch().as_u64();
                    let (commit, welcome, info, added, removed, join_request_id) =
                        build(s, &mut group, &signer)?;
                    Ok(CommitBundle {
                        epoch,
                        commit: wire(&commit)?,
                        welcome: welcome.as_ref().map(wire).transpose()?,
                        group_info: info.map(|g| wire(&MlsMessageOut::from(g))).transpose()?,
                        added,
                        removed,
                        join_request_id,
                    })
                })
                .await?;
            let posted = self.post_commit(circle, &bundle).await;
            if !matches!(posted, Ok(Some(_))) {
                let circle_id = circle.clone();
                self.with(move |s| {
                    let mut group = load(s, &circle_id)?;
                    group
                        .clear_pending_commit(s.provider.storage())
                        .map_err(ClientError::mls)
                })
                .await?;
            }
            if posted?.is_some() {
                return Ok(());
            }
        }
        Err(ClientError::Unexpected("the circle kept moving; try again"))
    }

    /// Posts a commit bundle. When the server accepts it, merges the pending
    /// commit and moves the cursor past it: `Some(seq)`. `None` when another
    /// commit got there first (`stale_epoch`).
    async fn post_commit(&self, circle: &CircleId, bundle: &CommitBundle) -> Result<Option<u64>> {
        let token = self.token().await?;
        let posted = self
            .api
            .post::<Accepted>(
                &format!("/v1/circles/{circle}/commits"),
                Some(&token),
                bundle,
            )
            .await;
        match posted {
            Ok(accepted) => {
                let circle_id = circle.clone();
                self.with(move |s| {
                    let mut group = load(s, &circle_id)?;
                    group
                        .merge_pending_commit(&s.provider)
                        .map_err(ClientError::mls)?;
                    s.store.set_cursor(&circle_id, accepted.seq)
                })
                .await?;
                Ok(Some(accepted.seq))
            }
            Err(err) if err.code() == Some(ErrorCode::StaleEpoch) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Joins every circle this device has a Welcome for.
    pub async fn accept_welcomes(&self) -> Result<Vec<CircleId>> {
        let token = self.token().await?;
        let list: WelcomeList = self.api.get("/v1/welcomes", &token).await?;
        let mut joined = Vec::new();
        for pending in list.welcomes {
            let welcome = pending.welcome.into_inner();
            let (circle, seq) = (pending.circle_id.clone(), pending.seq);
            self.with(move |s| {
                let MlsMessageBodyIn::Welcome(welcome) =
                    MlsMessageIn::tls_deserialize_exact(&welcome)
                        .map_err(ClientError::mls)?
                        .extract()
                else {
                    return Err(ClientError::Unexpected("not a Welcome"));
                };
                StagedWelcome::new_from_welcome(&s.provider, &mls::join_config(), welcome, None)
                    .map_err(ClientError::mls)?
                    .into_group(&s.provider)
                    .map_err(ClientError::mls)?;
                s.store.set_cursor(&circle, seq)
            })
            .await?;
            self.api
                .delete(&format!("/v1/welcomes/{}", pending.welcome_id), &token)
                .await?;
            self.announce(&pending.circle_id).await?;
            joined.push(pending.circle_id);
        }
        if !joined.is_empty() {
            // Joining consumed one of our KeyPackages.
            self.top_up_key_packages().await?;
        }
        Ok(joined)
    }

    /// Sends a text message.
    pub async fn send_text(&self, circle: &CircleId, body: &str) -> Result<uuid::Uuid> {
        let id = uuid::Uuid::new_v4();
        self.send(
            circle,
            Content::Text {
                id,
                body: body.to_owned(),
            },
        )
        .await?;
        Ok(id)
    }

    /// Sends any content. It first catches up with the circle so the message
    /// is encrypted in the current epoch; on `stale_epoch` it syncs and
    /// encrypts again.
    pub async fn send(&self, circle: &CircleId, content: Content) -> Result<u64> {
        self.sync(circle).await?;
        self.send_now(circle, content).await
    }

    /// Encrypts and sends at the local epoch; syncs and retries on
    /// `stale_epoch`.
    async fn send_now(&self, circle: &CircleId, content: Content) -> Result<u64> {
        let envelope = Envelope::new(content);
        let message_id = uuid::Uuid::new_v4();
        for _ in 0..COMMIT_ATTEMPTS {
            let (_, signer) = self.signer().await?;
            let (circle_id, plain) = (circle.clone(), envelope.to_bytes());
            let (epoch, ciphertext) = self
                .with(move |s| {
                    let mut group = load(s, &circle_id)?;
                    let message = group
                        .create_message(&s.provider, &signer, &plain)
                        .map_err(ClientError::mls)?;
                    Ok((group.epoch().as_u64(), wire(&message)?))
                })
                .await?;
            let token = self.token().await?;
            let sent = self
                .api
                .post::<Accepted>(
                    &format!("/v1/circles/{circle}/messages"),
                    Some(&token),
                    &SendMessage {
                        message_id,
                        epoch,
                        ciphertext,
                    },
                )
                .await;
            match sent {
                Ok(accepted)
                    if matches!(
                        envelope.content,
                        Content::Profile { .. } | Content::CircleProfile { .. }
                    ) =>
                {
                    return Ok(accepted.seq);
                }
                Ok(accepted) => {
                    let (device, _) = self.signing_key().await?;
                    let row = HistoryRow {
                        seq: accepted.seq,
                        sender: device,
                        envelope: envelope.clone(),
                        received_at: now(),
                    };
                    let circle_id = circle.clone();
                    self.with(move |s| s.store.add_history(&circle_id, &row))
                        .await?;
                    return Ok(accepted.seq);
                }
                Err(err) if err.code() == Some(ErrorCode::StaleEpoch) => {
                    Box::pin(self.sync(circle)).await?;
                }
                Err(err) => return Err(err),
            }
        }
        Err(ClientError::Unexpected("the circle kept moving; try again"))
    }

    /// Fetches everything new in a circle, in order: merges commits, decrypts
    /// and stores messages, then acknowledges. Returns the new messages.
    pub async fn sync(&self, circle: &CircleId) -> Result<Vec<HistoryRow>> {
        let circle_id = circle.clone();
        let mut cursor = self
            .with(move |s| s.store.cursor(&circle_id))
            .await?
            .ok_or(ClientError::UnknownCircle)?;
        let (me, _) = self.signing_key().await?;
        let circle_id = circle.clone();
        if !self.with(move |s| Ok(load(s, &circle_id).is_ok())).await? {
            cursor = self.rejoin(circle).await?;
        }
        let token = self.token().await?;
        let mut fresh = Vec::new();
        let mut announce = false;
        let mut saw_commit = false;
        loop {
            let page: LogPage = self
                .api
                .get(
                    &format!("/v1/circles/{circle}/messages?after={cursor}"),
                    &token,
                )
                .await?;
            let more = page.more;
            saw_commit |= page
                .entries
                .iter()
                .any(|e| e.sender != me && e.kind == hearth_protocol::circles::EntryKind::Commit);
            match self.process_entries(circle, me, page.entries).await {
                Ok((rows, joined)) => {
                    fresh.extend(rows);
                    cursor = cursor.max(page.next_after);
                    announce |= joined;
                }
                Err(ClientError::OutOfStep) => {
                    cursor = self.rejoin(circle).await?;
                    continue;
                }
                Err(err) => return Err(err),
            }
            if !more {
                break;
            }
        }
        if cursor > 0 {
            self.api
                .post_empty(
                    &format!("/v1/circles/{circle}/ack"),
                    &token,
                    &serde_json::json!({ "seq": cursor }),
                )
                .await?;
        }
        if announce {
            self.announce(circle).await?;
        }
        if saw_commit {
            self.reconcile(circle).await?;
        }
        Ok(fresh)
    }

    /// A facilitator's client keeps the MLS group in line with the server's
    /// roster: leaves of devices that left the roster (a member who left, an
    /// account that was deleted) are removed with a commit. Other clients do
    /// nothing here.
    fn reconcile<'a>(
        &'a self,
        circle: &'a CircleId,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let (me, _) = self.signing_key().await?;
            let token = self.token().await?;
            let seen: hearth_protocol::circles::Circle = self
                .api
                .get(&format!("/v1/circles/{circle}"), &token)
                .await?;
            let facilitating = seen.roster.iter().any(|r| {
                r.device_id == me && r.role == hearth_protocol::circles::Role::Facilitator
            });
            if !facilitating {
                return Ok(());
            }
            let gone: Vec<DeviceId> = self
                .members(circle)
                .await?
                .into_iter()
                .filter(|d| !seen.roster.iter().any(|r| r.device_id == *d))
                .collect();
            if gone.is_empty() {
                return Ok(());
            }
            self.remove_leaves(circle, gone).await
        })
    }

    /// Processes log entries in order: merges commits, decrypts and stores
    /// messages, moves the cursor. Entries at or below the stored cursor were
    /// processed already (by `sync` or the live stream) and are skipped, so
    /// the two can run side by side.
    async fn process_entries(
        &self,
        circle: &CircleId,
        me: DeviceId,
        entries: Vec<hearth_protocol::circles::LogEntry>,
    ) -> Result<(Vec<HistoryRow>, bool)> {
        let circle_id = circle.clone();
        self.with(move |s| {
            let mut someone_joined = false;
            let done = s.store.cursor(&circle_id)?.unwrap_or(0);
            let is_commit = |e: &hearth_protocol::circles::LogEntry| {
                e.kind == hearth_protocol::circles::EntryKind::Commit
            };
            let mut group = load(s, &circle_id)?;
            let mut rows = Vec::new();
            let mut last = None;
            for entry in entries.into_iter().filter(|e| e.seq > done) {
                last = Some(entry.seq);
                // Our own commits were merged when accepted; our own messages
                // were stored when sent.
                if entry.sender == me {
                    continue;
                }
                let message = MlsMessageIn::tls_deserialize_exact(entry.ciphertext.as_slice())
                    .map_err(ClientError::mls)?
                    .try_into_protocol_message()
                    .map_err(ClientError::mls)?;
                let processed = match group.process_message(&s.provider, message) {
                    Ok(processed) => processed,
                    // A commit we cannot process means our state no longer
                    // matches the circle's: stop here; the caller rejoins.
                    Err(_) if is_commit(&entry) => return Err(ClientError::OutOfStep),
                    // A message we cannot decrypt (from before we joined, or
                    // of an epoch too far behind): skip it.
                    Err(_) => continue,
                };
                match processed.into_content() {
                    ProcessedMessageContent::ApplicationMessage(app) => {
                        let envelope = Envelope::from_bytes(&app.into_bytes());
                        match &envelope.content {
                            Content::Profile { display_name } => {
                                s.store.set_name(&circle_id, entry.sender, display_name)?;
                            }
                            Content::CircleProfile { title } => {
                                s.store.set_title(&circle_id, title)?;
                            }
                            _ => {
                                let row = HistoryRow {
                                    seq: entry.seq,
                                    sender: entry.sender,
                                    envelope,
                                    received_at: entry.received_at,
                                };
                                s.store.add_history(&circle_id, &row)?;
                                rows.push(row);
                            }
                        }
                    }
                    ProcessedMessageContent::StagedCommitMessage(staged) => {
                        someone_joined |= staged.add_proposals().next().is_some();
                        group
                            .merge_staged_commit(&s.provider, *staged)
                            .map_err(ClientError::mls)?;
                    }
                    _ => {}
                }
            }
            if let Some(last) = last {
                s.store.set_cursor(&circle_id, last)?;
            }
            Ok((rows, someone_joined))
        })
        .await
    }

    /// Tells the circle who this is (and, for the circle's creator, its
    /// title): newcomers cannot read what was said before they joined.
    fn announce<'a>(
        &'a self,
        circle: &'a CircleId,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let key = format!("title_owner:{circle}");
            let circle_id = circle.clone();
            let (name, title) = self
                .with(move |s| {
                    let name = s.store.setting("display_name")?;
                    let title = match s.store.setting(&key)? {
                        Some(_) => s.store.title(&circle_id)?,
                        None => None,
                    };
                    Ok((name, title))
                })
                .await?;
            if let Some(title) = title {
                self.send_now(circle, Content::CircleProfile { title })
                    .await?;
            }
            if let Some(display_name) = name {
                self.send_now(circle, Content::Profile { display_name })
                    .await?;
            }
            Ok(())
        })
    }

    /// Sets the name this device shows in its circles (sent encrypted; the
    /// server never sees it). Announced to every circle now and on joining.
    pub async fn set_display_name(&self, name: &str) -> Result<()> {
        let value = name.to_owned();
        self.with(move |s| s.store.set_setting("display_name", &value))
            .await?;
        for circle in self.circles().await? {
            self.announce(&circle).await?;
        }
        Ok(())
    }

    /// Sets a circle's title (its creator), sent encrypted to the circle.
    pub async fn set_title(&self, circle: &CircleId, title: &str) -> Result<()> {
        let (circle_id, value) = (circle.clone(), title.to_owned());
        self.with(move |s| {
            s.store.set_title(&circle_id, &value)?;
            s.store
                .set_setting(&format!("title_owner:{circle_id}"), "1")
        })
        .await?;
        self.announce(circle).await
    }

    /// The circle's title, as its facilitator named it.
    pub async fn title(&self, circle: &CircleId) -> Result<Option<String>> {
        let circle = circle.clone();
        self.with(move |s| s.store.title(&circle)).await
    }

    /// The names members go by in the circle.
    pub async fn names(
        &self,
        circle: &CircleId,
    ) -> Result<std::collections::HashMap<DeviceId, String>> {
        let circle = circle.clone();
        let (me, _) = self.signing_key().await?;
        self.with(move |s| {
            let mut names: std::collections::HashMap<DeviceId, String> =
                s.store.names(&circle)?.into_iter().collect();
            if let Some(mine) = s.store.setting("display_name")? {
                names.insert(me, mine);
            }
            Ok(names)
        })
        .await
    }

    /// Rejoins a circle whose local state is lost or out of step: an external
    /// commit from the circle's latest GroupInfo, posted at the current epoch.
    /// Messages sent while out of step are not recoverable. Returns the new
    /// cursor (the external commit's sequence number).
    pub async fn rejoin(&self, circle: &CircleId) -> Result<u64> {
        for _ in 0..COMMIT_ATTEMPTS {
            let (device, signer) = self.signer().await?;
            let token = self.token().await?;
            let info: hearth_protocol::circles::GroupInfo = self
                .api
                .get(&format!("/v1/circles/{circle}/group-info"), &token)
                .await?;
            let circle_id = circle.clone();
            let bundle = self
                .with(move |s| {
                    if let Ok(Some(mut old)) = MlsGroup::load(
                        s.provider.storage(),
                        &GroupId::from_slice(circle_id.as_bytes()),
                    ) {
                        old.delete(s.provider.storage()).map_err(ClientError::mls)?;
                    }
                    let MlsMessageBodyIn::GroupInfo(verifiable) =
                        MlsMessageIn::tls_deserialize_exact(info.group_info.as_slice())
                            .map_err(ClientError::mls)?
                            .extract()
                    else {
                        return Err(ClientError::Unexpected("not a GroupInfo"));
                    };
                    let credential = CredentialWithKey {
                        credential: BasicCredential::new(credential_identity(&device)).into(),
                        signature_key: signer.public().into(),
                    };
                    let (_, bundle) = MlsGroup::external_commit_builder()
                        .with_config(mls::join_config())
                        .build_group(&s.provider, verifiable, credential)
                        .map_err(ClientError::mls)?
                        .load_psks(s.provider.storage())
                        .map_err(ClientError::mls)?
                        .build(s.provider.rand(), s.provider.crypto(), &signer, |_| true)
                        .map_err(ClientError::mls)?
                        .finalize(&s.provider)
                        .map_err(ClientError::mls)?;
                    let (commit, _, group_info) = bundle.into_contents();
                    Ok(CommitBundle {
                        epoch: info.epoch,
                        commit: wire(&commit)?,
                        welcome: None,
                        group_info: group_info
                            .map(|g| wire(&MlsMessageOut::from(g)))
                            .transpose()?,
                        added: Vec::new(),
                        removed: Vec::new(),
                        join_request_id: None,
                    })
                })
                .await?;
            if let Some(seq) = self.post_commit(circle, &bundle).await? {
                return Ok(seq);
            }
        }
        Err(ClientError::Unexpected("the circle kept moving; try again"))
    }

    /// The circle's stored history, oldest first.
    pub async fn history(&self, circle: &CircleId) -> Result<Vec<HistoryRow>> {
        let circle = circle.clone();
        self.with(move |s| s.store.history(&circle)).await
    }

    /// The circles this device is in.
    pub async fn circles(&self) -> Result<Vec<CircleId>> {
        self.with(|s| Ok(s.store.circles()?.into_iter().map(|(c, _)| c).collect()))
            .await
    }

    /// The devices in the circle's MLS group: the real membership, which
    /// members check rather than trusting the server's roster.
    pub async fn members(&self, circle: &CircleId) -> Result<Vec<DeviceId>> {
        let circle = circle.clone();
        self.with(move |s| {
            Ok(load(s, &circle)?
                .members()
                .filter_map(|m| {
                    uuid::Uuid::from_slice(m.credential.serialized_content())
                        .ok()
                        .map(DeviceId::from_uuid)
                })
                .collect())
        })
        .await
    }

    /// The circle's current epoch.
    pub async fn epoch(&self, circle: &CircleId) -> Result<u64> {
        let circle = circle.clone();
        self.with(move |s| Ok(load(s, &circle)?.epoch().as_u64()))
            .await
    }

    /// The epoch authenticator: members who compare it out of band detect a
    /// split view of the circle.
    pub async fn epoch_authenticator(&self, circle: &CircleId) -> Result<Vec<u8>> {
        let circle = circle.clone();
        self.with(move |s| Ok(load(s, &circle)?.epoch_authenticator().as_slice().to_vec()))
            .await
    }
}

fn load(s: &State, circle: &CircleId) -> Result<MlsGroup> {
    MlsGroup::load(
        s.provider.storage(),
        &GroupId::from_slice(circle.as_bytes()),
    )
    .map_err(ClientError::mls)?
    .ok_or(ClientError::UnknownCircle)
}
