//! Randomness, token minting and hashing.
//!
//! Tokens (refresh, link) are 256 random bits, shown to the client once and
//! stored only as their SHA-256. Challenges are stored the same way.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_protocol::{AccountId, DeviceId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomError;

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A random version-4 UUID.
pub fn random_uuid() -> Result<Uuid, RandomError> {
    Ok(uuid::Builder::from_random_bytes(random_bytes()?).into_uuid())
}

/// A new random device id.
pub fn new_device_id() -> Result<DeviceId, RandomError> {
    random_uuid().map(DeviceId::from_uuid)
}

/// A new random account id.
pub fn new_account_id() -> Result<AccountId, RandomError> {
    random_uuid().map(AccountId::from_uuid)
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A freshly minted secret token: the text for the client and the hash to
/// store.
pub struct Minted {
    /// `prefix` followed by 256 random bits in base64url. Shown once.
    pub token: String,
    /// SHA-256 of `token`.
    pub hash: [u8; 32],
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Minted(<redacted>)")
    }
}

/// Mints a token. The prefix (`hrt_` for refresh tokens, `hlt_` for link
/// tokens) lets secret scanners recognise a leaked one.
pub fn mint_token(prefix: &str) -> Result<Minted, RandomError> {
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<32>()?));
    let hash = sha256(token.as_bytes());
    Ok(Minted { token, hash })
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "hrt_";
/// The prefix of link tokens.
pub const LINK_PREFIX: &str = "hlt_";
/// The prefix of circle invites.
pub const INVITE_PREFIX: &str = "hit_";

/// The prefix of facilitator codes an operator mints.
pub const FACILITATOR_PREFIX: &str = "hfc_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_distinct_and_hashed() {
        let a = mint_token(REFRESH_PREFIX).unwrap();
        let b = mint_token(REFRESH_PREFIX).unwrap();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with("hrt_"));
        assert_eq!(a.token.len(), 4 + 43);
        assert_eq!(a.hash, sha256(a.token.as_bytes()));
        assert_eq!(random_uuid().unwrap().get_version_num(), 4);
    }
}
