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
//!
//! Signing is ours, verifying is the standard's: a few lines of `hmac` and
//! `sha2`, checked against the specification's test vector, while the
//! tests verify with the official `standardwebhooks` crate, so the two are
//! independent.

use chrono::NaiveDateTime;

use crate::domain::secret::{SigningSecret, StoredSecrets};

/// The secrets that sign a subscription's requests now: its current one and,
/// during a rotation's grace period, the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub current: SigningSecret,
    pub previous: Option<SigningSecret>,
}

impl Signer {
    /// The secrets that sign at `now` (UTC): the current one, and the one
    /// before a rotation until its grace period ends.
    pub fn at(stored: &StoredSecrets, now: NaiveDateTime) -> Self {
        Self {
            current: stored.current.clone(),
            previous: stored
                .previous
                .as_ref()
                .filter(|(_, until)| now < *until)
                .map(|(secret, _)| secret.clone()),
        }
    }

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
