//! A worker's identity as the scheduler, the records and clients see it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A worker's ed25519 public key. Shown, parsed and serialized as 64
/// lower-case hex characters (the form task records and JSON carry).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerKey(pub [u8; 32]);

impl WorkerKey {
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex characters: enough to tell workers apart in a table
    /// or a log line.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..6])
    }
}

impl fmt::Display for WorkerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for WorkerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WorkerKey").field(&self.short()).finish()
    }
}

/// A string is not a worker key.
#[derive(Debug, thiserror::Error)]
#[error("invalid worker key {input:?}: expected 64 hex characters")]
pub struct WorkerKeyParseError {
    input: String,
}

impl FromStr for WorkerKey {
    type Err = WorkerKeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::digest::hex32(s)
            .map(Self)
            .ok_or_else(|| WorkerKeyParseError {
                input: crate::digest::excerpt(s),
            })
    }
}

impl Serialize for WorkerKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for WorkerKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_hex_text() {
        let k = WorkerKey([0xab; 32]);
        let cbor = crate::to_cbor(&k).unwrap();
        let v: ciborium::Value = ciborium::from_reader(&cbor[..]).unwrap();
        assert_eq!(v.as_text(), Some("ab".repeat(32).as_str()));
        assert_eq!(crate::from_cbor::<WorkerKey>(&cbor).unwrap(), k);
        assert_eq!(k.short(), "abababababab");
        assert!("abc".parse::<WorkerKey>().is_err());
    }
}
