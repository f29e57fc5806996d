//! Real MLS for the scenarios: devices whose MLS signature key is their
//! registered Ed25519 key, KeyPackages, groups, commits and messages made
//! with Hearth's MLS profile (`hearth_protocol::mls`, the same code the SDK
//! uses), so the server relays the same bytes a real client sends.

use crate::{TestApp, TestDevice};
use anyhow::{Context as _, Result, bail};
use hearth_protocol::auth::LoginTokens;
use hearth_protocol::circles::{Accepted, CommitBundle, LogPage, PendingWelcome, WelcomeList};
use hearth_protocol::mls::{self as profile, KeyPackageOptions, PreparedCommit, Received};
use hearth_protocol::{Base64Bytes, CircleId};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// Turns a prepared commit into the bundle to post.
fn bundle(prepared: PreparedCommit) -> Result<CommitBundle> {
    Ok(prepared.bundle()?)
}

/// A signed-in device with its MLS state.
pub struct Member {
    /// The registered device.
    pub device: TestDevice,
    /// Its login.
    pub tokens: LoginTokens,
    /// Its MLS provider (keys and group state in memory).
    pub provider: OpenMlsRustCrypto,
    /// Its signer: the device's own Ed25519 key.
    pub signer: SignatureKeyPair,
    /// The circle's group, once created or joined.
    pub group: Option<MlsGroup>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").finish_non_exhaustive()
    }
}

impl Member {
    /// Registers and signs in a new device.
    pub async fn sign_up(app: &TestApp) -> Result<Self> {
        let (device, tokens) = app.signed_in().await?;
        Ok(Self::new(device, tokens))
    }

    /// Wraps a signed-in device.
    pub fn new(device: TestDevice, tokens: LoginTokens) -> Self {
        let signer = profile::signer(
            &device.key.to_bytes(),
            &device.key.verifying_key().to_bytes(),
        );
        Self {
            device,
            tokens,
            provider: OpenMlsRustCrypto::default(),
            signer,
            group: None,
        }
    }

    /// Its access token.
    pub fn token(&self) -> &str {
        &self.tokens.access_token
    }

    /// Its credential: a basic credential naming the device.
    pub fn credential(&self) -> CredentialWithKey {
        profile::credential(&self.device.device_id, &self.signer)
    }

    /// A fresh KeyPackage (TLS bytes), optionally with a custom lifetime or as
    /// a last resort.
    pub fn key_package(&self, lifetime: Option<Lifetime>, last_resort: bool) -> Result<Vec<u8>> {
        self.key_package_as(&self.signer, self.credential(), lifetime, last_resort)
    }

    /// A KeyPackage signed by any signer, with any credential (for forging).
    pub fn key_package_as(
        &self,
        signer: &SignatureKeyPair,
        credential: CredentialWithKey,
        lifetime: Option<Lifetime>,
        last_resort: bool,
    ) -> Result<Vec<u8>> {
        let options = KeyPackageOptions {
            lifetime,
            last_resort,
        };
        Ok(profile::key_package(
            &self.provider,
            signer,
            credential,
            options,
        )?)
    }

    /// Uploads `n` KeyPackages and a last resort.
    pub async fn publish_key_packages(&self, app: &TestApp, n: usize) -> Result<()> {
        let key_packages = (0..n)
            .map(|_| self.key_package(None, false).map(Base64Bytes::from))
            .collect::<Result<Vec<_>>>()?;
        let body = serde_json::json!({
            "key_packages": key_packages,
            "last_resort": Base64Bytes::from(self.key_package(None, true)?),
        });
        let response = app
            .post_json("/v1/key-packages", self.token(), &body)
            .await?;
        if response.status() != 200 {
            bail!("upload: {}", response.status());
        }
        Ok(())
    }

    /// Creates the MLS group and registers it as a circle.
    pub async fn create_circle(&mut self, app: &TestApp) -> Result<CircleId> {
        let id = CircleId::from_bytes(crate::rand_bytes::<16>().to_vec())?;
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &profile::create_config(),
            GroupId::from_slice(id.as_bytes()),
            self.credential(),
        )
        .map_err(profile::failed("creating the group"))?;
        self.group = Some(group);
        let body = serde_json::json!({ "circle_id": id });
        let response = app.post_json("/v1/circles", self.token(), &body).await?;
        if response.status() != 201 {
            bail!(
                "create circle: {} {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(id)
    }

    /// The group (panics in tests if there is none yet).
    pub fn group(&mut self) -> Result<&mut MlsGroup> {
        self.group.as_mut().context("no group yet")
    }

    /// The group's current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.as_ref().map_or(0, |g| g.epoch().as_u64())
    }

    /// The circle's id (its group's id).
    pub fn circle_id(&self) -> Result<CircleId> {
        let group = self.group.as_ref().context("no group")?;
        Ok(CircleId::from_bytes(group.group_id().as_slice().to_vec())?)
    }

    /// Each of `others` asks to join this member's circle, as people do: this
    /// member (a facilitator) mints an invite and they redeem it. Their
    /// pending join requests let this member claim their KeyPackages.
    pub async fn invite(&self, app: &TestApp, others: &[&Member]) -> Result<Vec<uuid::Uuid>> {
        let circle = self.circle_id()?;
        let mut requests = Vec::with_capacity(others.len());
        for other in others {
            let minted = app
                .post_json(
                    &format!("/v1/circles/{circle}/invites"),
                    self.token(),
                    &serde_json::json!({}),
                )
                .await?;
            if minted.status() != 201 {
                bail!("minting an invite: {}", minted.status());
            }
            let invite: hearth_protocol::circles::Invite = minted.json().await?;
            let redeemed = app
                .post_json(
                    "/v1/invites/redeem",
                    other.token(),
                    &serde_json::json!({ "token": invite.token }),
                )
                .await?;
            if redeemed.status() != 201 {
                bail!("redeeming an invite: {}", redeemed.status());
            }
            let request: hearth_protocol::circles::JoinRequestCreated = redeemed.json().await?;
            requests.push(request.join_request_id);
        }
        Ok(requests)
    }

    /// Has those of `others` who have not asked to join yet ask
    /// ([`Member::invite`]), claims their KeyPackages and builds (without
    /// merging) a commit that adds them: the bundle to post. When one join
    /// request names everyone added, the commit approves it.
    pub async fn add_commit(&mut self, app: &TestApp, others: &[&Member]) -> Result<CommitBundle> {
        let circle = self.circle_id()?;
        let pending: hearth_protocol::circles::JoinRequestList = app
            .get(&format!("/v1/circles/{circle}/join-requests"), self.token())
            .await?
            .json()
            .await?;
        let request_of = |m: &Member| {
            pending
                .join_requests
                .iter()
                .find(|r| r.device_ids.contains(&m.device.device_id))
                .map(|r| r.join_request_id)
        };
        let asking: Vec<&Member> = others
            .iter()
            .copied()
            .filter(|m| request_of(m).is_none())
            .collect();
        let mut requests: Vec<uuid::Uuid> = self.invite(app, &asking).await?;
        requests.extend(others.iter().filter_map(|m| request_of(m)));
        requests.sort();
        requests.dedup();
        let ids: Vec<_> = others.iter().map(|m| m.device.device_id).collect();
        let body = serde_json::json!({ "device_ids": ids });
        let response = app
            .post_json("/v1/key-packages/claim", self.token(), &body)
            .await?;
        if response.status() != 200 {
            bail!("claiming KeyPackages: {}", response.status());
        }
        let claimed: hearth_protocol::key_packages::ClaimedKeyPackages = response.json().await?;
        let key_packages = claimed
            .key_packages
            .iter()
            .map(|kp| profile::read_key_package(self.provider.crypto(), kp.key_package.as_slice()))
            .collect::<Result<Vec<_>, _>>()?;
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        let mut prepared = profile::add_commit(group, provider, signer, &key_packages, ids)?;
        if let [request] = requests[..] {
            prepared.join_request_id = Some(request);
        }
        bundle(prepared)
    }

    /// Builds (without merging) a commit that removes the devices.
    pub fn remove_commit(&mut self, others: &[&Member]) -> Result<CommitBundle> {
        let devices: Vec<_> = others.iter().map(|m| m.device.device_id).collect();
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        let in_group = profile::members(group);
        if let Some(missing) = devices.iter().find(|d| !in_group.contains(d)) {
            bail!("{missing:?} is not in the group");
        }
        let mut prepared = profile::remove_commit(group, provider, signer, &devices)?;
        prepared.removed = devices;
        bundle(prepared)
    }

    /// Builds (without merging) a self-update commit.
    pub fn update_commit(&mut self) -> Result<CommitBundle> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        bundle(profile::update_commit(group, provider, signer)?)
    }

    /// Merges the commit this member made (after the server accepted it).
    pub fn merge_own_commit(&mut self) -> Result<()> {
        let provider = &self.provider;
        self.group
            .as_mut()
            .context("no group")?
            .merge_pending_commit(provider)
            .map_err(profile::failed("merging our commit"))
            .map_err(Into::into)
    }

    /// Drops a commit the server refused.
    pub fn drop_own_commit(&mut self) -> Result<()> {
        let storage = self.provider.storage();
        self.group
            .as_mut()
            .context("no group")?
            .clear_pending_commit(storage)
            .map_err(profile::failed("clearing our commit"))
            .map_err(Into::into)
    }

    /// Encrypts an application message.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Base64Bytes> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        let message = profile::encrypt(group, provider, signer, plaintext)?;
        Ok(profile::wire(&message)?)
    }

    /// Processes one log entry: merges a commit, or returns an application
    /// message's plaintext.
    pub fn process(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let provider = &self.provider;
        let group = self.group.as_mut().context("no group")?;
        match profile::receive(group, provider, bytes)? {
            Received::Application { plaintext, .. } => Ok(Some(plaintext)),
            Received::Commit { .. } | Received::Other => Ok(None),
        }
    }

    /// Joins from the first pending Welcome, acknowledging it.
    pub async fn join(&mut self, app: &TestApp) -> Result<PendingWelcome> {
        let list: WelcomeList = app.get("/v1/welcomes", self.token()).await?.json().await?;
        let pending = list
            .welcomes
            .into_iter()
            .next()
            .context("no welcome waiting")?;
        self.group = Some(profile::join(&self.provider, pending.welcome.as_slice())?);
        let response = app
            .delete(
                &format!("/v1/welcomes/{}", pending.welcome_id),
                self.token(),
            )
            .await?;
        if response.status() != 204 {
            bail!("ack welcome: {}", response.status());
        }
        Ok(pending)
    }

    /// Reads every entry after `after` from the server, processing each;
    /// returns the plaintexts of application messages and the new cursor.
    pub async fn sync(
        &mut self,
        app: &TestApp,
        circle: &CircleId,
        mut after: u64,
    ) -> Result<(Vec<Vec<u8>>, u64)> {
        let mut plaintexts = Vec::new();
        loop {
            let page: LogPage = app
                .get(
                    &format!("/v1/circles/{circle}/messages?after={after}"),
                    self.token(),
                )
                .await?
                .json()
                .await?;
            for entry in &page.entries {
                if let Some(plaintext) = self.process(entry.ciphertext.as_slice())? {
                    plaintexts.push(plaintext);
                }
            }
            after = page.next_after;
            if !page.more {
                return Ok((plaintexts, after));
            }
        }
    }

    /// Throws away the local MLS state (as a broken client would) and builds
    /// an external commit from the circle's latest GroupInfo: the bundle to
    /// post to rejoin.
    pub async fn rejoin_commit(
        &mut self,
        app: &TestApp,
        circle: &CircleId,
    ) -> Result<CommitBundle> {
        let info: hearth_protocol::circles::GroupInfo = app
            .get(&format!("/v1/circles/{circle}/group-info"), self.token())
            .await?
            .json()
            .await?;
        self.provider = OpenMlsRustCrypto::default();
        let (group, prepared) = profile::external_commit(
            &self.provider,
            &self.signer,
            self.credential(),
            info.group_info.as_slice(),
            info.epoch,
        )?;
        self.group = Some(group);
        bundle(prepared)
    }

    /// Posts a commit bundle.
    pub async fn post_commit(
        &self,
        app: &TestApp,
        circle: &CircleId,
        bundle: &CommitBundle,
    ) -> Result<reqwest::Response> {
        app.post_json(
            &format!("/v1/circles/{circle}/commits"),
            self.token(),
            bundle,
        )
        .await
    }

    /// Posts a commit bundle that must be accepted, and merges it.
    pub async fn commit_accepted(
        &mut self,
        app: &TestApp,
        circle: &CircleId,
        bundle: &CommitBundle,
    ) -> Result<Accepted> {
        let response = self.post_commit(app, circle, bundle).await?;
        if response.status() != 201 {
            bail!("commit: {} {}", response.status(), response.text().await?);
        }
        self.merge_own_commit()?;
        Ok(response.json().await?)
    }

    /// Encrypts and sends a message; returns the server's answer.
    pub async fn send(
        &mut self,
        app: &TestApp,
        circle: &CircleId,
        text: &str,
    ) -> Result<reqwest::Response> {
        let body = hearth_protocol::circles::SendMessage {
            message_id: uuid::Uuid::new_v4(),
            epoch: self.epoch(),
            ciphertext: self.encrypt(text.as_bytes())?,
        };
        app.post_json(
            &format!("/v1/circles/{circle}/messages"),
            self.token(),
            &body,
        )
        .await
    }
}

/// A stranger gets 404 from `request`, and so does `member` once the
/// facilitator has removed it: outsiders and the removed are alike.
pub async fn strangers_and_the_removed_get_404(
    app: &TestApp,
    facilitator: &mut Member,
    member: &Member,
    circle: &CircleId,
    request: impl AsyncFn(&str) -> Result<reqwest::Response>,
) -> Result<()> {
    let stranger = Member::sign_up(app).await?;
    let not_found = hearth_protocol::ErrorCode::NotFound;
    crate::expect_error(request(stranger.token()).await?, 404, not_found).await?;
    let remove = facilitator.remove_commit(&[member])?;
    facilitator.commit_accepted(app, circle, &remove).await?;
    crate::expect_error(request(member.token()).await?, 404, not_found).await?;
    Ok(())
}

/// A facilitator with a circle and `n` enrolled members, all at one epoch.
pub async fn circle_with(app: &TestApp, n: usize) -> Result<(Member, Vec<Member>, CircleId)> {
    let mut facilitator = Member::sign_up(app).await?;
    let mut members = Vec::new();
    for _ in 0..n {
        let member = Member::sign_up(app).await?;
        member.publish_key_packages(app, 3).await?;
        members.push(member);
    }
    let circle = facilitator.create_circle(app).await?;
    if n > 0 {
        let refs: Vec<&Member> = members.iter().collect();
        let bundle = facilitator.add_commit(app, &refs).await?;
        facilitator.commit_accepted(app, &circle, &bundle).await?;
        for member in &mut members {
            member.join(app).await?;
        }
    }
    Ok((facilitator, members, circle))
}
