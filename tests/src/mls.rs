//! Real MLS for the scenarios: devices whose MLS signature key is their
//! registered Ed25519 key, KeyPackages, groups, commits and messages made
//! with openmls, so the server relays the same bytes a real client sends.

use crate::{TestApp, TestDevice};
use anyhow::{Context as _, Result, anyhow, bail};
use hearth_protocol::auth::SessionTokens;
use hearth_protocol::circles::{Accepted, CommitBundle, LogPage, PendingWelcome, WelcomeList};
use hearth_protocol::key_packages::credential_identity;
use hearth_protocol::{Base64Bytes, CircleId};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// The ciphersuite every scenario uses.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Handshake messages travel as PrivateMessage, as the design requires.
fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

/// Serialises an MLS message for the wire.
pub fn wire(message: &MlsMessageOut) -> Result<Base64Bytes> {
    Ok(message.tls_serialize_detached()?.into())
}

/// A commit bundle with no roster change (callers fill in the rest).
fn commit_bundle(
    epoch: u64,
    commit: &MlsMessageOut,
    group_info: Option<openmls::messages::group_info::GroupInfo>,
) -> Result<CommitBundle> {
    Ok(CommitBundle {
        epoch,
        commit: wire(commit)?,
        welcome: None,
        group_info: group_info
            .map(|g| wire(&MlsMessageOut::from(g)))
            .transpose()?,
        added: Vec::new(),
        removed: Vec::new(),
        join_request_id: None,
    })
}

/// A signed-in device with its MLS state.
pub struct Member {
    /// The registered device.
    pub device: TestDevice,
    /// Its session.
    pub tokens: SessionTokens,
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
    pub fn new(device: TestDevice, tokens: SessionTokens) -> Self {
        let signer = SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            device.key.to_bytes().to_vec(),
            device.key.verifying_key().to_bytes().to_vec(),
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
        CredentialWithKey {
            credential: BasicCredential::new(credential_identity(&self.device.device_id)).into(),
            signature_key: self.signer.public().into(),
        }
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
        // The last-resort extension must be listed in the leaf's capabilities.
        let capabilities =
            Capabilities::new(None, None, Some(&[ExtensionType::LastResort]), None, None);
        let mut builder = KeyPackage::builder().leaf_node_capabilities(capabilities);
        if let Some(lifetime) = lifetime {
            builder = builder.key_package_lifetime(lifetime);
        }
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle = builder
            .build(CIPHERSUITE, &self.provider, signer, credential)
            .map_err(|e| anyhow!("building a KeyPackage: {e:?}"))?;
        Ok(bundle.key_package().tls_serialize_detached()?)
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
            &create_config(),
            GroupId::from_slice(id.as_bytes()),
            self.credential(),
        )
        .map_err(|e| anyhow!("creating the group: {e:?}"))?;
        self.group = Some(group);
        let response = app
            .post_json(
                "/v1/circles",
                self.token(),
                &serde_json::json!({ "circle_id": id }),
            )
            .await?;
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

    /// Claims KeyPackages for the devices and builds (without merging) a
    /// commit that adds them: the bundle to post.
    pub async fn add_commit(&mut self, app: &TestApp, others: &[&Member]) -> Result<CommitBundle> {
        let ids: Vec<_> = others.iter().map(|m| m.device.device_id).collect();
        let response = app
            .post_json(
                "/v1/key-packages/claim",
                self.token(),
                &serde_json::json!({ "device_ids": ids }),
            )
            .await?;
        let claimed: hearth_protocol::key_packages::ClaimedKeyPackages = response.json().await?;
        let mut key_packages = Vec::new();
        for kp in claimed.key_packages {
            let parsed = KeyPackageIn::tls_deserialize_exact(kp.key_package.as_slice())?;
            key_packages.push(
                parsed
                    .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                    .map_err(|e| anyhow!("claimed KeyPackage: {e:?}"))?,
            );
        }
        let epoch = self.epoch();
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        let (commit, welcome, group_info) = group
            .add_members(provider, signer, &key_packages)
            .map_err(|e| anyhow!("add: {e:?}"))?;
        let mut bundle = commit_bundle(epoch, &commit, group_info)?;
        bundle.welcome = Some(wire(&welcome)?);
        bundle.added = ids;
        Ok(bundle)
    }

    /// Builds (without merging) a commit that removes the devices.
    pub fn remove_commit(&mut self, others: &[&Member]) -> Result<CommitBundle> {
        let epoch = self.epoch();
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        let leaves: Vec<LeafNodeIndex> = others
            .iter()
            .map(|other| {
                let identity = credential_identity(&other.device.device_id);
                group
                    .members()
                    .find(|m| m.credential.serialized_content() == identity.as_slice())
                    .map(|m| m.index)
                    .context("member not in group")
            })
            .collect::<Result<_>>()?;
        let (commit, _, group_info) = group
            .remove_members(provider, signer, &leaves)
            .map_err(|e| anyhow!("remove: {e:?}"))?;
        let mut bundle = commit_bundle(epoch, &commit, group_info)?;
        bundle.removed = others.iter().map(|m| m.device.device_id).collect();
        Ok(bundle)
    }

    /// Builds (without merging) a self-update commit.
    pub fn update_commit(&mut self) -> Result<CommitBundle> {
        let epoch = self.epoch();
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().context("no group")?;
        let bundle = group
            .self_update(provider, signer, LeafNodeParameters::default())
            .map_err(|e| anyhow!("self update: {e:?}"))?;
        let (commit, _, group_info) = bundle.into_contents();
        commit_bundle(epoch, &commit, group_info)
    }

    /// Merges the commit this member made (after the server accepted it).
    pub fn merge_own_commit(&mut self) -> Result<()> {
        let provider = &self.provider;
        self.group
            .as_mut()
            .context("no group")?
            .merge_pending_commit(provider)
            .map_err(|e| anyhow!("merge: {e:?}"))
    }

    /// Drops a commit the server refused.
    pub fn drop_own_commit(&mut self) -> Result<()> {
        let storage = self.provider.storage();
        self.group
            .as_mut()
            .context("no group")?
            .clear_pending_commit(storage)
            .map_err(|e| anyhow!("clear: {e:?}"))
    }

    /// Encrypts an application message.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Base64Bytes> {
        let (provider, signer) = (&self.provider, &self.signer);
        let message = self
            .group
            .as_mut()
            .context("no group")?
            .create_message(provider, signer, plaintext)
            .map_err(|e| anyhow!("encrypt: {e:?}"))?;
        wire(&message)
    }

    /// Processes one log entry: merges a commit, or returns an application
    /// message's plaintext.
    pub fn process(&mut self, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
        let message = MlsMessageIn::tls_deserialize_exact(bytes)?
            .try_into_protocol_message()
            .map_err(|e| anyhow!("not a protocol message: {e:?}"))?;
        let provider = &self.provider;
        let group = self.group.as_mut().context("no group")?;
        let processed = group
            .process_message(provider, message)
            .map_err(|e| anyhow!("process: {e:?}"))?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => Ok(Some(app.into_bytes())),
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                group
                    .merge_staged_commit(provider, *staged)
                    .map_err(|e| anyhow!("merge staged: {e:?}"))?;
                Ok(None)
            }
            _ => Ok(None),
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
        let MlsMessageBodyIn::Welcome(welcome) =
            MlsMessageIn::tls_deserialize_exact(pending.welcome.as_slice())?.extract()
        else {
            bail!("not a Welcome");
        };
        let group = StagedWelcome::new_from_welcome(&self.provider, &join_config(), welcome, None)
            .map_err(|e| anyhow!("welcome: {e:?}"))?
            .into_group(&self.provider)
            .map_err(|e| anyhow!("join: {e:?}"))?;
        self.group = Some(group);
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
        let MlsMessageBodyIn::GroupInfo(verifiable) =
            MlsMessageIn::tls_deserialize_exact(info.group_info.as_slice())?.extract()
        else {
            bail!("not a GroupInfo");
        };
        self.provider = OpenMlsRustCrypto::default();
        let (group, bundle) = MlsGroup::external_commit_builder()
            .with_config(join_config())
            .build_group(&self.provider, verifiable, self.credential())
            .map_err(|e| anyhow!("external commit: {e:?}"))?
            .load_psks(self.provider.storage())
            .map_err(|e| anyhow!("psks: {e:?}"))?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(|e| anyhow!("build: {e:?}"))?
            .finalize(&self.provider)
            .map_err(|e| anyhow!("finalize: {e:?}"))?;
        self.group = Some(group);
        let (commit, _, group_info) = bundle.into_contents();
        commit_bundle(info.epoch, &commit, group_info)
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
