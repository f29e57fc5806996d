//! Identity: accounts, devices, logins and refresh tokens, challenges,
//! link tokens, and the server's JWT signing keys.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::{AccountId, DeviceId};
use secrecy::SecretBox;
use uuid::Uuid;

/// A device about to be stored.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Its new random id.
    pub id: DeviceId,
    /// Its Ed25519 public key.
    pub public_key: [u8; 32],
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub id: DeviceId,
    /// The account it belongs to.
    pub account_id: AccountId,
    /// Its Ed25519 public key.
    pub public_key: Vec<u8>,
    /// Unix seconds when it registered.
    pub created_at: i64,
    /// Unix seconds when it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// One login: the family of refresh tokens descended from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginId(pub Uuid);

/// A refresh token about to be stored.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current: it is now spent and the new one replaces it.
    Rotated {
        /// The device the login belongs to.
        device_id: DeviceId,
        /// The login (unchanged by rotation).
        login_id: LoginId,
    },
    /// The token had already been rotated: the whole login is now revoked.
    Reused {
        /// The device whose login ended (its live sockets close).
        device_id: DeviceId,
    },
    /// Unknown, expired, or belongs to a revoked device.
    Invalid,
}

/// Who an access token speaks for, as far as the database still agrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLogin {
    /// The device.
    pub device_id: DeviceId,
    /// Its account.
    pub account_id: AccountId,
}

/// A JWT signing key as stored: the Ed25519 seed under its key id.
#[derive(Debug)]
pub struct SigningKeyRecord {
    /// The `kid` header value for tokens signed with this key.
    pub kid: String,
    /// The 32-byte Ed25519 seed, or the seed wrapped under
    /// `auth.key_wrapping_key` (the key ring tells them apart).
    pub private_key: SecretBox<Vec<u8>>,
    /// Unix seconds; the newest key signs.
    pub created_at: i64,
}

/// Accounts, devices and logins.
#[async_trait]
pub trait IdentityStore {
    /// All JWT signing keys, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;

    /// Stores a signing key unless one with that `kid` exists already.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()>;

    /// Replaces the stored private key of `kid` (wrapping or unwrapping it).
    /// False when there is no such key.
    async fn rewrap_signing_key(&self, kid: &str, private_key: &[u8]) -> Result<bool>;

    /// Remembers a challenge (by hash) until it expires.
    async fn insert_challenge(&self, hash: &[u8; 32], expires_at: i64) -> Result<()>;

    /// Consumes a challenge: true exactly once for an unexpired challenge.
    async fn take_challenge(&self, hash: &[u8; 32], now: i64) -> Result<bool>;

    /// Creates a new account holding one device.
    async fn create_account(&self, account_id: AccountId, device: &NewDevice) -> Result<()>;

    /// Consumes a link token and adds the device to the token's account.
    async fn link_device(
        &self,
        link_token_hash: &[u8; 32],
        now: i64,
        device: &NewDevice,
    ) -> Result<AccountId>;

    /// Stores a one-time link token for an account.
    async fn insert_link_token(
        &self,
        hash: &[u8; 32],
        account_id: AccountId,
        expires_at: i64,
    ) -> Result<()>;

    /// A device by id, revoked or not.
    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>>;

    /// An account's devices that are not revoked, oldest first.
    async fn account_devices(&self, account_id: AccountId) -> Result<Vec<DeviceRecord>>;

    /// Revokes a device of the account, ends its logins and deletes its push
    /// target. False when the account has no such active device.
    async fn revoke_device(
        &self,
        account_id: AccountId,
        device_id: DeviceId,
        now: i64,
    ) -> Result<bool>;

    /// Deletes the account and every row it owns.
    async fn delete_account(&self, account_id: AccountId) -> Result<()>;

    /// Starts a login for a device with its first refresh token.
    async fn create_login(
        &self,
        login_id: LoginId,
        device_id: DeviceId,
        now: i64,
        token: &NewRefreshToken,
    ) -> Result<()>;

    /// Spends a refresh token and stores its successor, or revokes the login
    /// when the token was already spent. One transaction.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &[u8; 32],
        next: &NewRefreshToken,
        now: i64,
    ) -> Result<RefreshOutcome>;

    /// Ends a login (log out): its refresh tokens and access tokens stop
    /// working. False when there was no such login.
    async fn end_login(&self, login_id: LoginId) -> Result<bool>;

    /// The device and account behind an access token, when the login still
    /// exists and the device is not revoked.
    async fn live_login(&self, login_id: LoginId, device_id: DeviceId)
    -> Result<Option<LiveLogin>>;
}
