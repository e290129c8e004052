//! Request signatures, as the Standard Webhooks specification defines them.
//!
//! Every subscription has its own secret, `whsec_` + base64 of 32 random
//! bytes, kept in `rowhook_secret`. Each request carries
//!
//! * `webhook-id`: the batch id — the same on every retry of the same rows,
//!   so a receiver can drop a batch it already processed;
//! * `webhook-timestamp`: Unix seconds when this attempt was signed (a
//!   receiver rejects old ones, which stops a captured request from being
//!   replayed later);
//! * `webhook-signature`: `v1,` + base64(HMAC-SHA256(secret,
//!   `id.timestamp.body`)), space-separated when more than one secret is
//!   valid — during a rotation's grace period the old secret signs too, so
//!   receivers can switch over at their own pace.
//!
//! Open Dental's own headers are sent unchanged beside these, so receivers
//! that do not check signatures see no difference.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Bytes of a generated secret (the specification asks for 24 to 64).
const GENERATED_BYTES: usize = 32;
const ACCEPTED_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a signing secret starts with \"whsec_\"")]
    Prefix,
    #[error("the part after \"whsec_\" is not base64")]
    Base64,
    #[error("a signing secret holds 24 to 64 bytes; this one holds {0}")]
    Length(usize),
    #[error("the system's random source failed: {0}")]
    Random(String),
}

/// A signing secret. Its `Debug` and `Display` never show the key; only
/// [`SigningSecret::expose`] does, for `rowhook secret show`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    key: Vec<u8>,
}

impl SigningSecret {
    /// A new random secret.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = vec![0u8; GENERATED_BYTES];
        getrandom::getrandom(&mut key).map_err(|e| SecretError::Random(e.to_string()))?;
        Ok(Self { key })
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !ACCEPTED_BYTES.contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Self { key })
    }

    /// The secret as text, `whsec_…`.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<signature>` of one message, given in parts (so a large body is
    /// hashed where it lies rather than copied next to its header first).
    fn sign(&self, parts: &[&[u8]]) -> String {
        // HMAC accepts a key of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in parts {
            mac.update(part);
        }
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(REDACTED)")
    }
}

impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_REDACTED")
    }
}

/// The secrets that sign a subscription's requests now: its current one and,
/// during a rotation's grace period, the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub current: SigningSecret,
    pub previous: Option<SigningSecret>,
}

impl Signer {
    /// The `webhook-signature` value for a message.
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body];
        let mut signature = self.current.sign(&content);
        if let Some(previous) = &self.previous {
            signature.push(' ');
            signature.push_str(&previous.sign(&content));
        }
        signature
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_bad_ones_say_why() {
        let secret = SigningSecret::generate().unwrap();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&text), Ok(secret.clone()));
        assert_ne!(SigningSecret::generate().unwrap(), secret, "random");

        assert_eq!(SigningSecret::parse("abc"), Err(SecretError::Prefix));
        assert_eq!(SigningSecret::parse("whsec_***"), Err(SecretError::Base64));
        assert_eq!(
            SigningSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::Length(5))
        );
    }

    #[test]
    fn secrets_are_never_shown_by_accident() {
        let secret = SigningSecret::generate().unwrap();
        let key = secret.expose();
        let shown = format!(
            "{secret} {secret:?} {:?}",
            Signer {
                current: secret.clone(),
                previous: None
            }
        );
        assert!(!shown.contains(&key[6..]), "{shown}");
    }

    /// The example in the Standard Webhooks specification's test vectors:
    /// a known secret, id, timestamp and body give a known signature.
    #[test]
    fn signs_the_specifications_example() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signer = Signer {
            current: secret,
            previous: None,
        };
        let signature = signer.signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn during_a_rotation_both_secrets_sign() {
        let (old, new) = (
            SigningSecret::generate().unwrap(),
            SigningSecret::generate().unwrap(),
        );
        let both = Signer {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        let signature = both.signature("id", 1, b"[]");
        let parts: Vec<&str> = signature.split(' ').collect();
        let alone = |s: &SigningSecret| {
            Signer {
                current: s.clone(),
                previous: None,
            }
            .signature("id", 1, b"[]")
        };
        assert_eq!(parts, [alone(&new), alone(&old)]);
    }
}
