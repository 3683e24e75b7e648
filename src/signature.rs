//! HMAC-SHA256 webhook signatures, shared by `serve` (verify) and `sign`.
//!
//! GitHub signs the exact bytes of the request body with the webhook secret and sends
//! `X-Hub-Signature-256: sha256=<64 lowercase hex digits>`. We verify over the raw bytes, before
//! anything parses them, and compare with [`Mac::verify_slice`], which runs in constant time.
//!
//! Several secrets may be configured at once so a secret can be rotated without dropping
//! deliveries: a signature is accepted if it matches any of them.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";
/// A SHA-256 digest is 32 bytes, 64 hex digits.
const DIGEST_HEX_LEN: usize = 64;

/// A webhook secret. Its `Debug` output is redacted so it can't reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes, redacted>)", self.0.len())
    }
}

/// Why a request's signature was refused. Every variant answers 401; the variant is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `X-Hub-Signature-256` header.
    Missing,
    /// The header is not `sha256=` followed by 64 hex digits (or appears more than once).
    Malformed,
    /// Well-formed, but no configured secret produces it.
    Mismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureError::Missing => "missing X-Hub-Signature-256 header",
            SignatureError::Malformed => {
                "malformed X-Hub-Signature-256 header (expected sha256=<64 hex digits>)"
            }
            SignatureError::Mismatch => "signature does not match any configured secret",
        })
    }
}

impl std::error::Error for SignatureError {}

/// Returns the header value GitHub would send for `body`: `sha256=` and 64 lowercase hex digits.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = new_mac(secret);
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks `header` (the raw `X-Hub-Signature-256` value, `None` if absent) against `body` under
/// each of `secrets`. Succeeds if any secret matches.
pub fn verify(
    header: Option<&[u8]>,
    body: &[u8],
    secrets: &[Secret],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header.strip_prefix(PREFIX.as_bytes()).ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != DIGEST_HEX_LEN {
        return Err(SignatureError::Malformed);
    }
    let digest = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    // Every secret is tried even after a match would be found, so the time taken does not
    // depend on which secret matched.
    let mut matched = false;
    for secret in secrets {
        let mut mac = new_mac(secret);
        mac.update(body);
        matched |= mac.verify_slice(&digest).is_ok();
    }
    if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
}

fn new_mac(secret: &Secret) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    // https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_PAYLOAD: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secrets() -> Vec<Secret> {
        vec![Secret::new(GITHUB_SECRET)]
    }

    #[test]
    fn sign_matches_githubs_published_vector() {
        assert_eq!(sign(&Secret::new(GITHUB_SECRET), GITHUB_PAYLOAD), GITHUB_SIGNATURE);
    }

    #[test]
    fn verify_accepts_githubs_published_vector() {
        assert_eq!(verify(Some(GITHUB_SIGNATURE.as_bytes()), GITHUB_PAYLOAD, &secrets()), Ok(()));
    }

    #[test]
    fn verify_accepts_uppercase_hex() {
        let upper = format!("sha256={}", GITHUB_SIGNATURE[7..].to_uppercase());
        assert_eq!(verify(Some(upper.as_bytes()), GITHUB_PAYLOAD, &secrets()), Ok(()));
    }

    #[test]
    fn a_one_byte_change_in_the_body_fails() {
        let got = verify(Some(GITHUB_SIGNATURE.as_bytes()), b"Hello, World?", &secrets());
        assert_eq!(got, Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_one_digit_change_in_the_signature_fails() {
        let mut sig = GITHUB_SIGNATURE.to_string();
        sig.replace_range(sig.len() - 1.., "f");
        let got = verify(Some(sig.as_bytes()), GITHUB_PAYLOAD, &secrets());
        assert_eq!(got, Err(SignatureError::Mismatch));
    }

    #[test]
    fn the_wrong_secret_fails() {
        let got = verify(Some(GITHUB_SIGNATURE.as_bytes()), GITHUB_PAYLOAD, &[Secret::new("nope")]);
        assert_eq!(got, Err(SignatureError::Mismatch));
    }

    #[test]
    fn any_of_several_secrets_may_match() {
        let rotating = vec![Secret::new("the-new-secret"), Secret::new(GITHUB_SECRET)];
        assert_eq!(verify(Some(GITHUB_SIGNATURE.as_bytes()), GITHUB_PAYLOAD, &rotating), Ok(()));
    }

    #[test]
    fn no_secrets_accept_nothing() {
        let got = verify(Some(GITHUB_SIGNATURE.as_bytes()), GITHUB_PAYLOAD, &[]);
        assert_eq!(got, Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let hex = &GITHUB_SIGNATURE[7..];
        let cases = [
            format!("sha1={hex}"),
            hex.to_string(),
            format!("SHA256={hex}"),
            format!("sha256={}", &hex[..63]),
            format!("sha256={hex}0"),
            format!("sha256={}zz", &hex[..62]),
            "sha256=".to_string(),
            String::new(),
            format!("sha256= {hex}"),
        ];
        for case in cases {
            let got = verify(Some(case.as_bytes()), GITHUB_PAYLOAD, &secrets());
            assert_eq!(got, Err(SignatureError::Malformed), "header {case:?}");
        }
    }

    #[test]
    fn a_missing_header_is_refused() {
        assert_eq!(verify(None, GITHUB_PAYLOAD, &secrets()), Err(SignatureError::Missing));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", Secret::new(GITHUB_SECRET));
        assert!(!shown.contains("Secret to"), "{shown}");
    }
}
