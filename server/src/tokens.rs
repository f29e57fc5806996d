//! Access tokens: EdDSA JWTs signed by the server's key ring.
//!
//! Header: `alg = EdDSA`, `typ = at+jwt` (RFC 9068), `kid` naming the key.
//! Claims: `iss`, `aud`, `sub` (the device id), `sid` (the login), `iat`,
//! `exp`. Validation follows RFC 8725: the algorithm is pinned to EdDSA (the
//! header's `alg` is checked, never trusted to choose the algorithm), `kid` must
//! name a key of ours, `typ` must be `at+jwt`, and `iss`, `aud`, `exp` and
//! `iat` are required and checked.
//!
//! Keys live in the database so every node shares them. The newest key signs;
//! all keys verify. With `auth.key_wrapping_key` set, their seeds are stored
//! wrapped (AES-256-GCM, the `kid` as associated data), so a copy of the
//! database alone cannot mint tokens; seeds stored before the key was set
//! are wrapped at the next start. A node that meets an unknown `kid` re-reads the keys (at
//! most every few seconds) before refusing, so a key added by another node is
//! picked up without a restart.

use crate::config::AuthConfig;
use crate::crypto::{self, RandomError};
use crate::storage::{LoginId, SigningKeyRecord, Storage, StorageError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use hearth_protocol::DeviceId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(5);
/// PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): this prefix, then 32 bytes.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The device id.
    pub sub: String,
    /// The login (login) the token descends from.
    pub sid: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
}

/// What can go wrong with the key ring.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The configured signing key is not 32 bytes of unpadded base64url.
    #[error("auth.signing_key must be 32 bytes as unpadded base64url")]
    BadConfiguredKey,
    /// Reading or writing keys failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No randomness for a new key.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The key for opaque ids could not be set up.
    #[error("the opaque-id key could not be set up")]
    IdKey,
    /// The configured wrapping key is not 32 bytes of unpadded base64url.
    #[error("auth.key_wrapping_key must be 32 bytes as unpadded base64url")]
    BadWrappingKey,
    /// The stored signing keys are wrapped and no wrapping key is set.
    #[error("the signing keys in the database are wrapped: set auth.key_wrapping_key")]
    WrappedWithoutKey,
    /// A stored signing key does not unwrap under the configured key.
    #[error("a signing key in the database does not unwrap under auth.key_wrapping_key")]
    WrongWrappingKey,
}

/// A seed wrapped: nonce, seed, tag.
const WRAPPED_LEN: usize = 12 + 32 + 16;

/// Wraps and unwraps signing key seeds under `auth.key_wrapping_key`.
struct Wrapper(aes_gcm::Aes256Gcm);

impl Wrapper {
    fn new(text: &str) -> Result<Self, KeyError> {
        use aes_gcm::KeyInit as _;
        let key = URL_SAFE_NO_PAD
            .decode(text.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .ok_or(KeyError::BadWrappingKey)?;
        aes_gcm::Aes256Gcm::new_from_slice(&key)
            .map(Self)
            .map_err(|_| KeyError::BadWrappingKey)
    }

    fn aad(kid: &str) -> Vec<u8> {
        [b"hearth/v1 signing key\0".as_slice(), kid.as_bytes()].concat()
    }

    fn wrap(&self, kid: &str, seed: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        use aes_gcm::aead::{Aead as _, Payload};
        let nonce: [u8; 12] = crypto::random_bytes()?;
        let sealed = self
            .0
            .encrypt(
                &aes_gcm::Nonce::from(nonce),
                Payload {
                    msg: seed,
                    aad: &Self::aad(kid),
                },
            )
            .map_err(|_| KeyError::WrongWrappingKey)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    fn unwrap(&self, kid: &str, stored: &[u8]) -> Result<[u8; 32], KeyError> {
        use aes_gcm::aead::{Aead as _, Payload};
        let (nonce, sealed) = stored.split_at(12.min(stored.len()));
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| KeyError::WrongWrappingKey)?;
        let seed = self
            .0
            .decrypt(
                &aes_gcm::Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &Self::aad(kid),
                },
            )
            .map_err(|_| KeyError::WrongWrappingKey)?;
        seed.try_into().map_err(|_| KeyError::WrongWrappingKey)
    }
}

/// A signing key with its seed in the clear (in memory only).
struct Seed {
    kid: String,
    seed: SecretBox<[u8; 32]>,
}

/// The seed of a stored key: as stored (32 bytes) or unwrapped.
fn open_record(record: &SigningKeyRecord, wrapper: Option<&Wrapper>) -> Result<Seed, KeyError> {
    let stored = record.private_key.expose_secret();
    let seed: [u8; 32] = match (stored.len(), wrapper) {
        (32, _) => stored
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Storage(StorageError::Corrupt("signing key")))?,
        (WRAPPED_LEN, Some(wrapper)) => wrapper.unwrap(&record.kid, stored)?,
        (WRAPPED_LEN, None) => return Err(KeyError::WrappedWithoutKey),
        _ => return Err(KeyError::Storage(StorageError::Corrupt("signing key"))),
    };
    Ok(Seed {
        kid: record.kid.clone(),
        seed: SecretBox::new(Box::new(seed)),
    })
}

struct Signer {
    kid: String,
    key: EncodingKey,
}

/// The server's JWT keys and validation rules.
pub struct KeyRing {
    signer: Signer,
    verifiers: RwLock<HashMap<String, DecodingKey>>,
    last_reload: Mutex<Option<Instant>>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: u64,
    /// Keys the opaque ids the server shows others (video rooms and
    /// identities): derived from the oldest signing key, so every node on
    /// the database derives the same. Set up once, cloned per id.
    id_mac: hmac::Hmac<sha2::Sha256>,
    /// Tokens whose signature and claims were checked, by SHA-256 of the
    /// token: a phone sends many requests with one token, and an Ed25519
    /// verification costs more than the rest of a send. Entries last until
    /// the token expires; a change of keys empties it.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    /// Unwraps keys another node adds (see [`KeyRing::reload`]).
    wrapper: Option<Wrapper>,
}

/// A token that passed [`KeyRing::verify`].
#[derive(Debug, Clone, Copy)]
struct Verified {
    device_id: DeviceId,
    login_id: LoginId,
    /// Unix seconds after which it fails (`exp` plus the leeway).
    until: i64,
}

/// How many verified tokens are remembered (about 100 bytes each).
const VERIFIED_CAPACITY: usize = 65_536;

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing_kid", &self.signer.kid)
            .finish_non_exhaustive()
    }
}

/// The key id of a public key: a truncated SHA-256, so the same key always has
/// the same `kid` on every node.
pub fn kid_for(public_key: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(&crypto::sha256(public_key)[..12])
}

/// PKCS#8 DER of an Ed25519 seed, as `jsonwebtoken` wants it for signing.
fn pkcs8_der(seed: &[u8; 32]) -> Vec<u8> {
    [PKCS8_ED25519_PREFIX.as_slice(), seed.as_slice()].concat()
}

fn public_key(seed: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// Parses a configured seed.
pub fn parse_seed(text: &str) -> Result<SecretBox<[u8; 32]>, KeyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| KeyError::BadConfiguredKey)?;
    let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadConfiguredKey)?;
    Ok(SecretBox::new(Box::new(seed)))
}

impl KeyRing {
    /// Loads the keys, storing the configured key or generating the first one
    /// as needed. The newest key (or the configured one) signs.
    pub async fn load(
        storage: &dyn Storage,
        config: &AuthConfig,
        now: i64,
    ) -> Result<Self, KeyError> {
        let configured = config
            .signing_key
            .as_ref()
            .map(|text| parse_seed(text.expose_secret()))
            .transpose()?;
        let wrapper = config
            .key_wrapping_key
            .as_ref()
            .map(|text| Wrapper::new(text.expose_secret()))
            .transpose()?;
        let mut records = storage.signing_keys().await?;
        // Seeds stored before a wrapping key was set are wrapped now.
        if let Some(wrapper) = &wrapper {
            let mut wrapped = 0;
            for record in records
                .iter()
                .filter(|r| r.private_key.expose_secret().len() == 32)
            {
                let seed = open_record(record, None)?;
                let stored = wrapper.wrap(&record.kid, seed.seed.expose_secret())?;
                if storage.rewrap_signing_key(&record.kid, &stored).await? {
                    wrapped += 1;
                }
            }
            if wrapped > 0 {
                tracing::info!(wrapped, "signing keys wrapped under auth.key_wrapping_key");
                records = storage.signing_keys().await?;
            }
        }
        let wanted = match configured {
            Some(seed) => Some(seed),
            None if records.is_empty() => Some(SecretBox::new(Box::new(crypto::random_bytes()?))),
            None => None,
        };
        let signing_kid = match wanted {
            Some(seed) => {
                let kid = kid_for(&public_key(seed.expose_secret()));
                if !records.iter().any(|r| r.kid == kid) {
                    let private_key = match &wrapper {
                        Some(wrapper) => wrapper.wrap(&kid, seed.expose_secret())?,
                        None => seed.expose_secret().to_vec(),
                    };
                    storage
                        .insert_signing_key(&SigningKeyRecord {
                            kid: kid.clone(),
                            private_key: SecretBox::new(Box::new(private_key)),
                            created_at: now,
                        })
                        .await?;
                    records = storage.signing_keys().await?;
                }
                kid
            }
            // Records are oldest first; the newest signs.
            None => records.last().map(|r| r.kid.clone()).unwrap_or_default(),
        };
        let seeds = records
            .iter()
            .map(|r| open_record(r, wrapper.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let signer = seeds
            .iter()
            .find(|r| r.kid == signing_kid)
            .map(|r| Signer {
                kid: r.kid.clone(),
                key: EncodingKey::from_ed_der(&pkcs8_der(r.seed.expose_secret())),
            })
            .ok_or(KeyError::Storage(StorageError::Corrupt("signing key")))?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = config.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;

        let oldest = seeds
            .first()
            .ok_or(KeyError::Storage(StorageError::Corrupt("signing key")))?;
        let id_key = crypto::sha256(
            &[
                b"hearth/v1 opaque ids\0".as_slice(),
                oldest.seed.expose_secret(),
            ]
            .concat(),
        );
        Ok(Self {
            signer,
            id_mac: hmac::Mac::new_from_slice(&id_key).map_err(|_| KeyError::IdKey)?,
            verifiers: RwLock::new(verifiers(&seeds)),
            verified: Mutex::new(HashMap::new()),
            last_reload: Mutex::new(None),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_secs: config.access_token_ttl_secs,
            wrapper,
        })
    }

    /// An opaque id for what `parts` name (a keyed hash, 128 bits in hex):
    /// the same on every node, meaningless to whoever sees it.
    pub fn opaque_id(&self, parts: &[&[u8]]) -> String {
        use hmac::Mac as _;
        let mut mac = self.id_mac.clone();
        for part in parts {
            mac.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(part);
        }
        crate::crypto::hex(&mac.finalize().into_bytes()[..16])
    }

    /// The `kid` of the key that signs new tokens.
    pub fn signing_kid(&self) -> &str {
        &self.signer.kid
    }

    /// Access token lifetime in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Signs an access token for a device's login.
    pub fn issue(
        &self,
        device_id: DeviceId,
        login_id: LoginId,
        now: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signer.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: device_id.to_string(),
            sid: login_id.0.to_string(),
            iat: now,
            exp: now.saturating_add(i64::try_from(self.ttl_secs).unwrap_or(900)),
        };
        jsonwebtoken::encode(&header, &claims, &self.signer.key)
    }

    /// Checks an access token's form, signature and claims. `None` for any
    /// failure: callers answer every one the same way.
    pub async fn verify(
        &self,
        token: &str,
        storage: &dyn Storage,
        now: i64,
    ) -> Option<(DeviceId, LoginId)> {
        let digest = crypto::sha256(token.as_bytes());
        if let Some(known) = self.remembered(&digest, now) {
            return Some((known.device_id, known.login_id));
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return None;
        }
        let kid = header.kid?;
        if !self.knows(&kid) {
            self.reload(storage).await;
        }
        let data = {
            let verifiers = self.verifiers.read().ok()?;
            let key = verifiers.get(&kid)?;
            jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).ok()?
        };
        let claims = data.claims;
        // `iat` in the future beyond leeway means a forged or broken clock.
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        if claims.iat > now.saturating_add(leeway) || claims.exp <= claims.iat {
            return None;
        }
        let device_id = claims.sub.parse().ok()?;
        let login_id = LoginId(Uuid::try_parse(&claims.sid).ok()?);
        self.remember(
            digest,
            Verified {
                device_id,
                login_id,
                until: claims.exp.saturating_add(leeway),
            },
            now,
        );
        Some((device_id, login_id))
    }

    fn remembered(&self, digest: &[u8; 32], now: i64) -> Option<Verified> {
        let verified = self.verified.lock().ok()?;
        verified
            .get(digest)
            .copied()
            .filter(|known| now < known.until)
    }

    fn remember(&self, digest: [u8; 32], token: Verified, now: i64) {
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= VERIFIED_CAPACITY {
            verified.retain(|_, known| now < known.until);
            if verified.len() >= VERIFIED_CAPACITY {
                verified.clear();
            }
        }
        verified.insert(digest, token);
    }

    fn knows(&self, kid: &str) -> bool {
        self.verifiers
            .read()
            .map(|v| v.contains_key(kid))
            .unwrap_or(false)
    }

    async fn reload(&self, storage: &dyn Storage) {
        {
            let Ok(mut last) = self.last_reload.lock() else {
                return;
            };
            if last.is_some_and(|at| at.elapsed() < RELOAD_AT_MOST_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        match storage.signing_keys().await {
            Ok(records) => {
                let seeds: Vec<Seed> = records
                    .iter()
                    .filter_map(|r| match open_record(r, self.wrapper.as_ref()) {
                        Ok(seed) => Some(seed),
                        Err(err) => {
                            tracing::warn!(error = %err, "a signing key another node stored does not open");
                            None
                        }
                    })
                    .collect();
                if let Ok(mut map) = self.verifiers.write() {
                    *map = verifiers(&seeds);
                }
                // A key that left the ring takes its tokens with it.
                if let Ok(mut verified) = self.verified.lock() {
                    verified.clear();
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not reload signing keys"),
        }
    }
}

fn verifiers(records: &[Seed]) -> HashMap<String, DecodingKey> {
    records
        .iter()
        .map(|r| {
            let public = public_key(r.seed.expose_secret());
            (r.kid.clone(), DecodingKey::from_ed_der(&public))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_wrapping_signs_with_the_seed() {
        let seed = [9u8; 32];
        let signing = ed25519_dalek::pkcs8::DecodePrivateKey::from_pkcs8_der(&pkcs8_der(&seed));
        let signing: SigningKey = signing.expect("valid PKCS#8");
        assert_eq!(signing.to_bytes(), seed);
    }
}
