//! Content digests: modules and inputs are addressed by their SHA-256.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// A SHA-256 digest, shown and parsed as 64 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sha256(#[serde(with = "serde_bytes")] [u8; 32]);

impl Sha256 {
    /// Hashes `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(sha2::Sha256::digest(data).into())
    }

    /// A hasher for bytes that arrive in pieces.
    pub fn hasher() -> Sha256Hasher {
        Sha256Hasher(sha2::Sha256::new())
    }

    /// Wraps raw digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lower-case hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Hashes bytes piece by piece; [`Sha256Hasher::finish`] gives the same
/// digest as [`Sha256::of`] on the whole.
#[derive(Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// Adds the next piece.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The digest of everything added.
    pub fn finish(self) -> Sha256 {
        Sha256(self.0.finalize().into())
    }
}

impl fmt::Debug for Sha256Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Hasher")
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256({})", self.to_hex())
    }
}

/// A string is not a valid hex SHA-256 digest.
#[derive(Debug, thiserror::Error)]
#[error("invalid sha256 {input:?}: expected 64 hex characters")]
pub struct DigestParseError {
    input: String,
}

impl FromStr for Sha256 {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex32(s)
            .map(Self)
            .ok_or_else(|| DigestParseError { input: excerpt(s) })
    }
}

/// 32 bytes from 64 hex characters (digests and keys are shown so).
pub(crate) fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// The start of a bad input, for an error message.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hash_like_the_whole() {
        let mut h = Sha256::hasher();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), Sha256::of(b"hello world"));
    }

    #[test]
    fn known_vector_and_round_trip() {
        let d = Sha256::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d.to_hex().parse::<Sha256>().unwrap(), d);
        assert!("abc".parse::<Sha256>().is_err());
        assert!("zz".repeat(32).parse::<Sha256>().is_err());
    }
}
