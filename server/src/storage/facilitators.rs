//! Who may open circles and what each account holds: facilitator codes the
//! operator mints, the accounts enrolled with one, each account's usage
//! against its quotas, and the instance's figures for the operator. No
//! names: accounts are opaque ids.

use super::Result;
use async_trait::async_trait;
use hearth_protocol::AccountId;

/// What an account holds, against its quotas.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Circles one of its devices facilitates.
    pub circles: i64,
    /// Its devices that are not revoked.
    pub devices: i64,
    /// Invites outstanding (not expired, not used up) in circles it
    /// facilitates.
    pub invites: i64,
}

/// The instance as a whole, for the operator: counts and sizes, never ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Accounts.
    pub accounts: i64,
    /// Devices, revoked ones included.
    pub devices: i64,
    /// Accounts enrolled as facilitators.
    pub facilitators: i64,
    /// Circles.
    pub circles: i64,
    /// Log entries held (messages and commits not yet deleted).
    pub messages: i64,
    /// Bytes of ciphertext held in log entries, Welcomes and snapshots.
    pub bytes: i64,
}

/// Facilitator enrolment, quotas and the instance's figures.
#[async_trait]
pub trait FacilitatorStore {
    /// Stores a facilitator code's hash, valid until `expires_at`.
    async fn insert_facilitator_code(
        &self,
        hash: &[u8; 32],
        expires_at: i64,
        now: i64,
    ) -> Result<()>;

    /// Takes the code (once, unexpired at `now`) and enrols `account` as a
    /// facilitator, in one transaction. The enrolment date; `None` when the
    /// code is unknown, used or expired. An account enrolled already keeps
    /// its first date (and the code is spent).
    async fn redeem_facilitator_code(
        &self,
        hash: &[u8; 32],
        account: AccountId,
        now: i64,
    ) -> Result<Option<i64>>;

    /// When `account` was enrolled as a facilitator, if it is.
    async fn facilitator_since(&self, account: AccountId) -> Result<Option<i64>>;

    /// Every enrolled facilitator with its enrolment date, oldest first.
    async fn facilitators(&self) -> Result<Vec<(AccountId, i64)>>;

    /// Ends an account's enrolment (its circles stay; it opens no new ones).
    /// False if it was not enrolled.
    async fn revoke_facilitator(&self, account: AccountId) -> Result<bool>;

    /// What `account` holds at `now`.
    async fn usage(&self, account: AccountId, now: i64) -> Result<Usage>;

    /// The instance's figures.
    async fn figures(&self) -> Result<Figures>;
}
