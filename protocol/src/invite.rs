//! Invite links and the sealed introduction note.
//!
//! A link is `hearth:invite/<token>#<key>`: `<token>` is the invite token the
//! server minted (`hit_…`), `<key>` 32 random bytes the facilitator's client
//! chose, as unpadded base64url. The key never reaches the server (a URL
//! fragment is not sent). The invitee seals an introduction note to it and
//! sends only the sealed bytes with the redemption; the facilitator's client,
//! which kept the key per invite, opens them.
//!
//! Sealing ([`seal_note`], with the `mls` feature): ChaCha20-Poly1305 under the
//! key, a fresh random 12-byte nonce, associated data
//! [`NOTE_AAD`] (`hearth/v1 join note`); the sealed note is the nonce followed
//! by the ciphertext and its 16-byte tag.

use crate::Base64Bytes;

/// What every invite link begins with.
pub const LINK_PREFIX: &str = "hearth:invite/";
/// The associated data a note is sealed with.
pub const NOTE_AAD: &[u8] = b"hearth/v1 join note";
/// Length of the note key.
pub const NOTE_KEY_LEN: usize = 32;
/// Length of the nonce before a sealed note.
pub const NOTE_NONCE_LEN: usize = 12;

/// An invite link's two parts.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteLink {
    /// The token to redeem with.
    pub token: String,
    /// The key to seal the note to.
    pub note_key: [u8; NOTE_KEY_LEN],
}

// The token and key are secrets: Debug shows neither.
impl std::fmt::Debug for InviteLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteLink(…)")
    }
}

impl InviteLink {
    /// Reads `hearth:invite/<token>#<key>`; `None` when it is not one.
    pub fn parse(link: &str) -> Option<Self> {
        let (token, key) = link.strip_prefix(LINK_PREFIX)?.split_once('#')?;
        if token.is_empty() || token.contains(['#', '/', ' ']) {
            return None;
        }
        let note_key = Base64Bytes::decode(key)?.try_into().ok()?;
        Some(Self {
            token: token.to_owned(),
            note_key,
        })
    }

    /// The link's text.
    pub fn to_link(&self) -> String {
        format!(
            "{LINK_PREFIX}{}#{}",
            self.token,
            Base64Bytes::encode(&self.note_key)
        )
    }
}

/// Seals `note` to `key` with `nonce` (which must be fresh and random): the
/// nonce, then the ChaCha20-Poly1305 ciphertext with its tag.
#[cfg(feature = "mls")]
pub fn seal_note(
    key: &[u8; NOTE_KEY_LEN],
    nonce: &[u8; NOTE_NONCE_LEN],
    note: &[u8],
) -> Result<Vec<u8>, crate::mls::MlsError> {
    use openmls::prelude::{AeadType, OpenMlsCrypto as _};
    let sealed = openmls_rust_crypto::RustCrypto::default()
        .aead_encrypt(AeadType::ChaCha20Poly1305, key, note, nonce, NOTE_AAD)
        .map_err(crate::mls::failed("sealing the note"))?;
    Ok([nonce.as_slice(), &sealed].concat())
}

/// Opens a sealed note with `key`; `None` when it was not sealed to it or is
/// not UTF-8.
#[cfg(feature = "mls")]
pub fn open_note(key: &[u8], sealed: &[u8]) -> Option<String> {
    use openmls::prelude::{AeadType, OpenMlsCrypto as _};
    let (nonce, ciphertext) = sealed.split_at_checked(NOTE_NONCE_LEN)?;
    let plain = openmls_rust_crypto::RustCrypto::default()
        .aead_decrypt(AeadType::ChaCha20Poly1305, key, ciphertext, nonce, NOTE_AAD)
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_read_back_and_strangers_do_not_parse() {
        let link = InviteLink {
            token: "hit_abc".into(),
            note_key: [7; 32],
        };
        assert_eq!(InviteLink::parse(&link.to_link()), Some(link));
        for bad in [
            "hearth:invite/hit_abc",
            "https://example.org/hit_abc#AAAA",
            "hearth:invite/#BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
            "hearth:invite/hit_abc#short",
        ] {
            assert!(InviteLink::parse(bad).is_none(), "{bad}");
        }
    }
}
