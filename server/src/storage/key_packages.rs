//! KeyPackages: each device's pool, its last resort, and atomic claims.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::{AccountId, DeviceId};

/// A validated KeyPackage about to be stored.
#[derive(Debug, Clone)]
pub struct NewKeyPackage {
    /// Its MLS hash reference (unique).
    pub hash_ref: Vec<u8>,
    /// The TLS-serialised KeyPackage.
    pub data: Vec<u8>,
    /// Unix seconds when its lifetime ends.
    pub expires_at: i64,
    /// Its ciphersuite (RFC 9420's code).
    pub cipher_suite: u16,
}

/// What happened to one KeyPackage of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPackageStored {
    /// Stored.
    Stored,
    /// The same KeyPackage is stored already.
    Duplicate,
    /// The pool is at its limit.
    PoolFull,
}

/// Devices' KeyPackages.
#[async_trait]
pub trait KeyPackageStore {
    /// Stores KeyPackages for a device while its pool (unexpired, not last
    /// resort) holds fewer than `max_pool`.
    async fn store_key_packages(
        &self,
        device_id: DeviceId,
        items: &[NewKeyPackage],
        max_pool: u32,
        now: i64,
    ) -> Result<Vec<KeyPackageStored>>;

    /// Replaces the device's last-resort KeyPackage.
    async fn store_last_resort(
        &self,
        device_id: DeviceId,
        item: &NewKeyPackage,
        now: i64,
    ) -> Result<KeyPackageStored>;

    /// Takes one unexpired KeyPackage of the device in `cipher_suite`, or,
    /// when none is left, reads (without consuming) its last resort in that
    /// suite. `(bytes, is_last_resort)`.
    async fn claim_key_package(
        &self,
        device_id: DeviceId,
        cipher_suite: u16,
        now: i64,
    ) -> Result<Option<(Vec<u8>, bool)>>;

    /// Whether `claimer` (of `account`) may claim `target`'s KeyPackages:
    /// `target` belongs to the same account, or is named in a pending join
    /// request of a circle `claimer` facilitates.
    async fn may_claim(
        &self,
        claimer: DeviceId,
        account: AccountId,
        target: DeviceId,
    ) -> Result<bool>;

    /// The device's unexpired pool size and whether it has a last resort.
    async fn key_package_count(&self, device_id: DeviceId, now: i64) -> Result<(u32, bool)>;
}
