//! ES256 JSON Web Tokens as Web Push (VAPID, RFC 8292) and APNs (provider
//! tokens) want them: a P-256 ECDSA signature over `header.claims`, encoded
//! as the 64-byte `r || s` (RFC 7518 §3.4).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde::Serialize;

/// Signs `claims` with `key`; `kid` goes into the header when given.
pub fn es256<C: Serialize>(
    key: &SigningKey,
    kid: Option<&str>,
    claims: &C,
) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        typ: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        kid: Option<&'a str>,
    }
    let header = Header {
        alg: "ES256",
        typ: kid.is_none().then_some("JWT"),
        kid,
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let signature: Signature = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    ))
}
