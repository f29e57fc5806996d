//! Hearth's MLS profile, as code: the one place that says which ciphersuites,
//! group configuration, credentials and KeyPackages Hearth uses, and how a
//! commit becomes the [`CommitBundle`] the server takes.
//!
//! The SDK builds with it, the server checks uploaded KeyPackages with it, and
//! the end-to-end tests make their MLS bytes with it, so the three cannot
//! drift apart. Enabled by the `mls` feature (it brings in openmls); the wire
//! types elsewhere in this crate do not need it.
//!
//! The profile:
//! - ciphersuite `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` for new
//!   circles; the server also accepts KeyPackages of the ChaCha20-Poly1305
//!   sibling ([`SUPPORTED_CIPHERSUITES`]). Ed25519 because the MLS signature
//!   key *is* the device's registered key;
//! - basic credentials whose identity is the device id's 16 bytes
//!   ([`credential_identity`]);
//! - KeyPackages list the last-resort extension in their capabilities, live
//!   at most [`MAX_LIFETIME_SECS`];
//! - groups put the ratchet tree in Welcomes, send handshakes and application
//!   messages as PrivateMessage, and keep [`MAX_PAST_EPOCHS`] past epochs'
//!   secrets, the server's default epoch window ([`EPOCH_WINDOW`]).

use crate::circles::{CommitBundle, EPOCH_WINDOW};
use crate::framing::{PAD_MIN, padded_len};
use crate::key_packages::{KeyPackageRejection, MAX_LIFETIME_SECS, credential_identity};
use crate::{Base64Bytes, DeviceId};
use openmls::messages::group_info::{GroupInfo, VerifiableGroupInfo};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls::storage::OpenMlsProvider as Provider;
use openmls::treesync::errors::LifetimeError;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;

/// The ciphersuite circles are created with.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// The ciphersuites whose KeyPackages the server accepts: X25519, AES-128-GCM
/// or ChaCha20-Poly1305, SHA-256, and Ed25519.
pub const SUPPORTED_CIPHERSUITES: [Ciphersuite; 2] = [
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
];

/// Past epochs whose secrets a group keeps, so a message sent just before a
/// commit still decrypts after it: the widest epoch window a server allows.
pub const MAX_PAST_EPOCHS: usize = EPOCH_WINDOW as usize;

/// What can go wrong building or reading MLS for Hearth.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MlsError {
    /// Bytes that should hold an MLS structure do not decode.
    #[error("not a valid {expected}")]
    Decode {
        /// What was expected ("Welcome", "GroupInfo", ...).
        expected: &'static str,
        /// The decoder's complaint.
        #[source]
        source: tls_codec::Error,
    },
    /// A well-formed MLS message of another kind than the one expected.
    #[error("expected a {expected}, found another kind of MLS message")]
    WrongKind {
        /// What was expected.
        expected: &'static str,
    },
    /// Serialising a message for the wire failed.
    #[error("encoding an MLS message failed")]
    Encode(#[source] tls_codec::Error),
    /// A log entry could not be processed by the group: not decryptable (from
    /// before this member joined, or too many epochs back) or, for a commit,
    /// a sign that this member's state no longer matches the circle's.
    #[error("the group could not process this message")]
    Unprocessable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// openmls refused an operation.
    #[error("{operation} failed")]
    Operation {
        /// What was being done.
        operation: &'static str,
        /// openmls's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Wraps an openmls error as [`MlsError::Operation`].
pub fn failed<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> MlsError {
    move |source| MlsError::Operation {
        operation,
        source: Box::new(source),
    }
}

fn decode(expected: &'static str) -> impl FnOnce(tls_codec::Error) -> MlsError {
    move |source| MlsError::Decode { expected, source }
}

/// The configuration a circle's creator makes the group with.
pub fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .padding_size(PAD_MIN)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

/// The matching configuration for joining (by Welcome or external commit).
pub fn join_config() -> MlsGroupJoinConfig {
    padded_join_config(PAD_MIN)
}

/// [`join_config`] padding private messages to multiples of `padding`.
fn padded_join_config(padding: usize) -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .padding_size(padding)
        .max_past_epochs(MAX_PAST_EPOCHS)
        .use_ratchet_tree_extension(true)
        .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
        .build()
}

/// The leaf capabilities of a device's KeyPackages: the defaults plus the
/// last-resort extension (which must be listed to be used).
pub fn leaf_capabilities() -> Capabilities {
    Capabilities::new(None, None, Some(&[ExtensionType::LastResort]), None, None)
}

/// The device's MLS signer: its registered Ed25519 key pair.
pub fn signer(private_key: &[u8; 32], public_key: &[u8; 32]) -> SignatureKeyPair {
    SignatureKeyPair::from_raw(
        SignatureScheme::ED25519,
        private_key.to_vec(),
        public_key.to_vec(),
    )
}

/// The device's credential: a basic credential naming the device, with its
/// signature key.
pub fn credential(device: &DeviceId, signer: &SignatureKeyPair) -> CredentialWithKey {
    CredentialWithKey {
        credential: BasicCredential::new(credential_identity(device)).into(),
        signature_key: signer.public().into(),
    }
}

/// The device a member's credential names, if it names one.
pub fn device_of(member: &Member) -> Option<DeviceId> {
    uuid::Uuid::from_slice(member.credential.serialized_content())
        .ok()
        .map(DeviceId::from_uuid)
}

/// The devices in a group: its real membership.
pub fn members(group: &MlsGroup) -> Vec<DeviceId> {
    group.members().filter_map(|m| device_of(&m)).collect()
}

/// How to build a KeyPackage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyPackageOptions {
    /// Its lifetime; openmls's default (about 84 days from now) when `None`.
    pub lifetime: Option<Lifetime>,
    /// Mark it as the device's last resort.
    pub last_resort: bool,
}

/// A KeyPackage of the profile, TLS-serialised for upload. Its private keys
/// go into `provider`'s storage, where joining from a Welcome finds them.
pub fn key_package(
    provider: &impl OpenMlsProvider,
    signer: &SignatureKeyPair,
    credential: CredentialWithKey,
    options: KeyPackageOptions,
) -> Result<Vec<u8>, MlsError> {
    let mut builder = KeyPackage::builder().leaf_node_capabilities(leaf_capabilities());
    if let Some(lifetime) = options.lifetime {
        builder = builder.key_package_lifetime(lifetime);
    }
    if options.last_resort {
        builder = builder.mark_as_last_resort();
    }
    let bundle = builder
        .build(CIPHERSUITE, provider, signer, credential)
        .map_err(failed("building a KeyPackage"))?;
    bundle
        .key_package()
        .tls_serialize_detached()
        .map_err(MlsError::Encode)
}

/// A KeyPackage that passed [`check_key_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedKeyPackage {
    /// The KeyPackage framed as an `MLSMessage` (`mls_key_package`), however
    /// it was uploaded: what claims hand out.
    pub framed: Vec<u8>,
    /// Its ciphersuite's code.
    pub cipher_suite: u16,
    /// Its MLS hash reference.
    pub hash_ref: Vec<u8>,
    /// Unix seconds when its lifetime ends.
    pub not_after: u64,
    /// Whether it carries the last-resort extension.
    pub last_resort: bool,
}

/// Checks a KeyPackage uploaded by `device`, whose registered Ed25519 key is
/// `device_key`, against the profile: it parses and validates (signatures,
/// lifetime current, extensions), its ciphersuite is supported, its leaf's
/// signature key is the device's key, its credential names the device, and
/// its lifetime is no longer than [`MAX_LIFETIME_SECS`].
pub fn check_key_package(
    bytes: &[u8],
    device: &DeviceId,
    device_key: &[u8],
) -> Result<CheckedKeyPackage, KeyPackageRejection> {
    let crypto = RustCrypto::default();
    let (parsed, framed) = match MlsMessageIn::tls_deserialize_exact(bytes).map(|m| m.extract()) {
        Ok(MlsMessageBodyIn::KeyPackage(parsed)) => (parsed, bytes.to_vec()),
        Ok(_) => return Err(KeyPackageRejection::NotAKeyPackage),
        Err(_) => {
            let parsed = KeyPackageIn::tls_deserialize_exact(bytes)
                .map_err(|_| KeyPackageRejection::NotAKeyPackage)?;
            (parsed, frame_key_package(bytes))
        }
    };
    let key_package =
        parsed
            .validate(&crypto, ProtocolVersion::Mls10)
            .map_err(|err| match err {
                KeyPackageVerifyError::LifetimeError(LifetimeError::Expired { .. }) => {
                    KeyPackageRejection::Expired
                }
                KeyPackageVerifyError::LifetimeError(LifetimeError::NotValidYet { .. }) => {
                    KeyPackageRejection::NotYetValid
                }
                KeyPackageVerifyError::InvalidSignature
                | KeyPackageVerifyError::InvalidLeafNodeSignature => {
                    KeyPackageRejection::BadSignature
                }
                _ => KeyPackageRejection::Invalid,
            })?;
    if !SUPPORTED_CIPHERSUITES.contains(&key_package.ciphersuite()) {
        return Err(KeyPackageRejection::UnsupportedCiphersuite);
    }
    let leaf = key_package.leaf_node();
    if leaf.signature_key().as_slice() != device_key {
        return Err(KeyPackageRejection::ForeignSignatureKey);
    }
    let credential = BasicCredential::try_from(leaf.credential().clone())
        .map_err(|_| KeyPackageRejection::ForeignCredential)?;
    if credential.identity() != credential_identity(device).as_slice() {
        return Err(KeyPackageRejection::ForeignCredential);
    }
    let lifetime = key_package.life_time();
    if lifetime.not_after().saturating_sub(lifetime.not_before()) > MAX_LIFETIME_SECS {
        return Err(KeyPackageRejection::LifetimeTooLong);
    }
    let hash_ref = key_package
        .hash_ref(&crypto)
        .map_err(|_| KeyPackageRejection::Invalid)?;
    Ok(CheckedKeyPackage {
        framed,
        cipher_suite: u16::from(key_package.ciphersuite()),
        hash_ref: hash_ref.as_slice().to_vec(),
        not_after: lifetime.not_after(),
        last_resort: key_package.last_resort(),
    })
}

/// A bare KeyPackage framed as an `MLSMessage`: version `mls10`, wire
/// format `mls_key_package`, then the KeyPackage.
pub fn frame_key_package(bare: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(bare.len() + 4);
    framed.extend_from_slice(&crate::framing::MLS10.to_be_bytes());
    framed.extend_from_slice(
        &crate::framing::WireFormat::KeyPackage
            .as_u16()
            .to_be_bytes(),
    );
    framed.extend_from_slice(bare);
    framed
}

/// Reads and validates a claimed KeyPackage (an `MLSMessage` framing it, as
/// claims hand them out; a bare one is read too), ready to add.
pub fn read_key_package(crypto: &impl OpenMlsCrypto, bytes: &[u8]) -> Result<KeyPackage, MlsError> {
    let parsed = match MlsMessageIn::tls_deserialize_exact(bytes).map(|m| m.extract()) {
        Ok(MlsMessageBodyIn::KeyPackage(parsed)) => parsed,
        Ok(_) => {
            return Err(MlsError::WrongKind {
                expected: "KeyPackage",
            });
        }
        Err(_) => KeyPackageIn::tls_deserialize_exact(bytes).map_err(decode("KeyPackage"))?,
    };
    parsed
        .validate(crypto, ProtocolVersion::Mls10)
        .map_err(failed("validating a claimed KeyPackage"))
}

/// Encrypts an application message, padded by the profile's rule
/// ([`crate::framing::padded_len`]): its ciphertext is 1 KiB, or the next
/// power of two that holds it. The group's padding setting follows the
/// message's bucket (stored only when it changes).
pub fn encrypt<P: Provider>(
    group: &mut MlsGroup,
    provider: &P,
    signer: &SignatureKeyPair,
    plaintext: &[u8],
) -> Result<MlsMessageOut, MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    let bucket = padded_len(plaintext.len());
    if group.configuration().padding_size() != bucket {
        group
            .set_configuration(provider.storage(), &padded_join_config(bucket))
            .map_err(failed("setting the padding"))?;
    }
    group
        .create_message(provider, signer, plaintext)
        .map_err(failed("encrypting a message"))
}

/// An MLS message, serialised for the wire.
pub fn wire(message: &MlsMessageOut) -> Result<Base64Bytes, MlsError> {
    Ok(message
        .tls_serialize_detached()
        .map_err(MlsError::Encode)?
        .into())
}

fn read_message(bytes: &[u8], expected: &'static str) -> Result<MlsMessageBodyIn, MlsError> {
    Ok(MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(decode(expected))?
        .extract())
}

/// Whether `bytes` are exactly one well-formed `MLSMessage` of any kind (it
/// parses; nothing is verified).
pub fn is_mls_message(bytes: &[u8]) -> bool {
    MlsMessageIn::tls_deserialize_exact(bytes).is_ok()
}

/// Reads a Welcome (an `MLSMessage` framing a Welcome).
pub fn read_welcome(bytes: &[u8]) -> Result<Welcome, MlsError> {
    match read_message(bytes, "Welcome")? {
        MlsMessageBodyIn::Welcome(welcome) => Ok(welcome),
        _ => Err(MlsError::WrongKind {
            expected: "Welcome",
        }),
    }
}

/// Reads a GroupInfo (an `MLSMessage` framing a GroupInfo).
pub fn read_group_info(bytes: &[u8]) -> Result<VerifiableGroupInfo, MlsError> {
    match read_message(bytes, "GroupInfo")? {
        MlsMessageBodyIn::GroupInfo(info) => Ok(info),
        _ => Err(MlsError::WrongKind {
            expected: "GroupInfo",
        }),
    }
}

/// Joins a group from a Welcome (its bytes as the server hands them out).
pub fn join<P: Provider>(provider: &P, welcome: &[u8]) -> Result<MlsGroup, MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    StagedWelcome::new_from_welcome(provider, &join_config(), read_welcome(welcome)?, None)
        .map_err(failed("reading a Welcome"))?
        .into_group(provider)
        .map_err(failed("joining from a Welcome"))
}

/// What a processed log entry was.
#[derive(Debug)]
pub enum Received {
    /// An application message's plaintext, and the device whose credential
    /// signed it (authenticated by MLS, unlike the server's claim).
    Application {
        /// The plaintext.
        plaintext: Vec<u8>,
        /// The sender, when its credential names a device.
        sender: Option<DeviceId>,
    },
    /// A commit, now merged.
    Commit {
        /// Whether someone new is in the group: it added members, or it is an
        /// external commit (a device joining or rejoining by itself).
        /// Newcomers cannot read what came before.
        added_members: bool,
    },
    /// A proposal or anything else with nothing to show.
    Other,
}

/// Processes one log entry's bytes: decrypts an application message, or
/// merges a commit. A message the group cannot process is
/// [`MlsError::Unprocessable`].
pub fn receive<P: Provider>(
    group: &mut MlsGroup,
    provider: &P,
    bytes: &[u8],
) -> Result<Received, MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    let message = MlsMessageIn::tls_deserialize_exact(bytes)
        .map_err(decode("MLS message"))?
        .try_into_protocol_message()
        .map_err(|_| MlsError::WrongKind {
            expected: "PrivateMessage or PublicMessage",
        })?;
    let processed = group
        .process_message(provider, message)
        .map_err(|err| MlsError::Unprocessable(Box::new(err)))?;
    let sender = uuid::Uuid::from_slice(processed.credential().serialized_content())
        .ok()
        .map(DeviceId::from_uuid);
    let external = matches!(processed.sender(), Sender::NewMemberCommit);
    Ok(match processed.into_content() {
        ProcessedMessageContent::ApplicationMessage(app) => Received::Application {
            plaintext: app.into_bytes(),
            sender,
        },
        ProcessedMessageContent::StagedCommitMessage(staged) => {
            let added_members = external || staged.add_proposals().next().is_some();
            group
                .merge_staged_commit(provider, *staged)
                .map_err(failed("merging a commit"))?;
            Received::Commit { added_members }
        }
        _ => Received::Other,
    })
}

/// A commit made but not yet merged, with the roster change it declares: what
/// becomes a [`CommitBundle`]. Merge it once the server accepts the bundle;
/// clear it when the server answers `stale_epoch`.
#[derive(Debug)]
pub struct PreparedCommit {
    /// The epoch it was made in.
    pub epoch: u64,
    /// The commit message.
    pub commit: MlsMessageOut,
    /// The Welcome for added devices.
    pub welcome: Option<MlsMessageOut>,
    /// The new epoch's GroupInfo.
    pub group_info: Option<GroupInfo>,
    /// Devices the commit adds.
    pub added: Vec<DeviceId>,
    /// Devices the commit takes off the roster.
    pub removed: Vec<DeviceId>,
    /// The join request it approves.
    pub join_request_id: Option<uuid::Uuid>,
}

/// A commit bundle's parts as openmls hands them out.
fn from_bundle(
    bundle: CommitMessageBundle,
) -> (MlsMessageOut, Option<MlsMessageOut>, Option<GroupInfo>) {
    let (commit, welcome, info) = bundle.into_contents();
    let welcome = welcome.map(|w| MlsMessageOut::from_welcome(w, ProtocolVersion::Mls10));
    (commit, welcome, info)
}

impl PreparedCommit {
    fn new(
        epoch: u64,
        (commit, welcome, group_info): (MlsMessageOut, Option<MlsMessageOut>, Option<GroupInfo>),
    ) -> Self {
        Self {
            epoch,
            commit,
            welcome,
            group_info,
            added: Vec::new(),
            removed: Vec::new(),
            join_request_id: None,
        }
    }

    /// The bundle to post to `POST /v1/circles/{id}/commits`.
    pub fn bundle(&self) -> Result<CommitBundle, MlsError> {
        Ok(CommitBundle {
            epoch: self.epoch,
            commit: wire(&self.commit)?,
            welcome: self.welcome.as_ref().map(wire).transpose()?,
            group_info: self
                .group_info
                .clone()
                .map(|info| wire(&MlsMessageOut::from(info)))
                .transpose()?,
            added: self.added.clone(),
            removed: self.removed.clone(),
            join_request_id: self.join_request_id,
        })
    }
}

/// A commit adding the devices whose claimed KeyPackages are given; it
/// declares them as added. A device that still has a leaf in the group (it
/// left, or was removed from the roster, and nobody has removed its leaf
/// yet) is removed from the tree in the same commit, so that it can come
/// back with a fresh KeyPackage.
pub fn add_commit<P: Provider>(
    group: &mut MlsGroup,
    provider: &P,
    signer: &SignatureKeyPair,
    key_packages: &[KeyPackage],
    devices: Vec<DeviceId>,
) -> Result<PreparedCommit, MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    let epoch = group.epoch().as_u64();
    let stale: Vec<LeafNodeIndex> = group
        .members()
        .filter(|m| device_of(m).is_some_and(|d| devices.contains(&d)))
        .map(|m| m.index)
        .collect();
    let bundle = group
        .commit_builder()
        .propose_removals(stale)
        .propose_adds(key_packages.iter().cloned())
        .force_self_update(true)
        .load_psks(provider.storage())
        .map_err(failed("loading PSKs"))?
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(failed("adding members"))?
        .stage_commit(provider)
        .map_err(failed("adding members"))?;
    let welcome = bundle.to_welcome_msg();
    let (commit, _, info) = bundle.into_contents();
    let mut prepared = PreparedCommit::new(epoch, (commit, welcome, info));
    prepared.added = devices;
    Ok(prepared)
}

/// A commit removing the leaves of the devices. It declares no roster change:
/// callers that take the devices off the roster too set `removed`.
pub fn remove_commit<P: Provider>(
    group: &mut MlsGroup,
    provider: &P,
    signer: &SignatureKeyPair,
    devices: &[DeviceId],
) -> Result<PreparedCommit, MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    let epoch = group.epoch().as_u64();
    let leaves: Vec<LeafNodeIndex> = group
        .members()
        .filter(|m| device_of(m).is_some_and(|d| devices.contains(&d)))
        .map(|m| m.index)
        .collect();
    let parts = group
        .remove_members(provider, signer, &leaves)
        .map_err(failed("removing members"))?;
    Ok(PreparedCommit::new(epoch, parts))
}

/// A self-update commit: fresh key material for this member's leaf.
pub fn update_commit<P: Provider>(
    group: &mut MlsGroup,
    provider: &P,
    signer: &SignatureKeyPair,
) -> Result<PreparedCommit, MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    let epoch = group.epoch().as_u64();
    let bundle = group
        .self_update(provider, signer, LeafNodeParameters::default())
        .map_err(failed("updating own leaf"))?;
    Ok(PreparedCommit::new(epoch, from_bundle(bundle)))
}

/// Joins by external commit from a circle's GroupInfo (bytes as the server
/// hands them out) at `epoch`: the new group, holding the commit pending, and
/// the commit to post. Merge it once the server accepts the bundle.
pub fn external_commit<P: Provider>(
    provider: &P,
    signer: &SignatureKeyPair,
    credential: CredentialWithKey,
    group_info: &[u8],
    epoch: u64,
) -> Result<(MlsGroup, PreparedCommit), MlsError>
where
    P::StorageError: Send + Sync + 'static,
{
    let (group, bundle) = MlsGroup::external_commit_builder()
        .with_config(join_config())
        .build_group(provider, read_group_info(group_info)?, credential)
        .map_err(failed("starting an external commit"))?
        .load_psks(provider.storage())
        .map_err(failed("loading PSKs"))?
        .build(provider.rand(), provider.crypto(), signer, |_| true)
        .map_err(failed("building an external commit"))?
        .finalize(provider)
        .map_err(failed("finalising an external commit"))?;
    Ok((group, PreparedCommit::new(epoch, from_bundle(bundle))))
}
