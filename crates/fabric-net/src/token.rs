//! Join tokens: the dispatcher's public key and a shared secret.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::{OsRng, RngCore as _};
use sha2::Digest as _;

use crate::PublicKey;

const PREFIX: &str = "fabric1.";

/// What a worker needs to join: whom to trust, and what to prove.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// The dispatcher's key, which the worker pins.
    pub dispatcher: PublicKey,
    /// The secret the worker proves.
    pub secret: [u8; 32],
}

impl JoinToken {
    /// A new token for `dispatcher` with a random secret.
    pub fn generate(dispatcher: PublicKey) -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        Self { dispatcher, secret }
    }

    /// The digest the dispatcher stores instead of the secret.
    pub fn secret_digest(secret: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(secret).into()
    }

    /// Whether `secret` hashes to `digest`, compared in constant time.
    pub fn secret_matches(secret: &[u8], digest: &[u8]) -> bool {
        let got = Self::secret_digest(secret);
        digest.len() == 32
            && got
                .iter()
                .zip(digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 64];
        raw[..32].copy_from_slice(&self.dispatcher.to_bytes());
        raw[32..].copy_from_slice(&self.secret);
        write!(f, "{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "JoinToken(dispatcher {}, secret hidden)",
            self.dispatcher.short()
        )
    }
}

/// A string is not a join token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Wrong prefix.
    #[error(
        "not a Fabric join token (it should start with {PREFIX:?}; get one with `fabric token create`)"
    )]
    Prefix,
    /// Not base64 of the right length.
    #[error("join token is damaged (expected 86 base64url characters after {PREFIX:?})")]
    Encoding,
    /// The key part is not an ed25519 key.
    #[error("join token holds an invalid dispatcher key")]
    Key,
}

impl FromStr for JoinToken {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.trim().strip_prefix(PREFIX).ok_or(TokenError::Prefix)?;
        let raw: [u8; 64] = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Encoding)?
            .try_into()
            .map_err(|_| TokenError::Encoding)?;
        let key: [u8; 32] = raw[..32].try_into().expect("32 bytes");
        let dispatcher = PublicKey::from_bytes(&key).ok_or(TokenError::Key)?;
        Ok(Self {
            dispatcher,
            secret: raw[32..].try_into().expect("32 bytes"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn round_trip_and_errors() {
        let id = Identity::generate().unwrap();
        let t = JoinToken::generate(id.public());
        let back: JoinToken = t.to_string().parse().unwrap();
        assert_eq!(back, t);
        assert!(matches!(
            "xyz".parse::<JoinToken>(),
            Err(TokenError::Prefix)
        ));
        assert!(matches!(
            "fabric1.abc".parse::<JoinToken>(),
            Err(TokenError::Encoding)
        ));
        let d = JoinToken::secret_digest(&t.secret);
        assert!(JoinToken::secret_matches(&t.secret, &d));
        assert!(!JoinToken::secret_matches(&[0; 32], &d));
        assert!(!format!("{t:?}").contains(&hex::encode(t.secret)));
    }
}
