//! A subscription's signing secret: `whsec_` + base64 of 24 to 64 bytes,
//! parsed once and never shown by accident.
//!
//! The value lives here, below the database layer that stores it and the
//! delivery layer that signs with it; how a rotation's two secrets sign is
//! `delivery::signing`'s business.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::NaiveDateTime;
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
    pub fn sign(&self, parts: &[&[u8]]) -> String {
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

/// A subscription's secrets as stored (`rowhook_secret`).
#[derive(Debug, Clone)]
pub struct StoredSecrets {
    pub current: SigningSecret,
    /// The secret before a rotation, and until when (UTC) it still signs.
    pub previous: Option<(SigningSecret, NaiveDateTime)>,
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
}
