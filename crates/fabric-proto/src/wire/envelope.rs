//! The envelope every frame's body is: the protocol version and the
//! message, so a peer of another version is told apart from garbage.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{CodecError, from_cbor, to_cbor};

/// The wire protocol version this build speaks.
pub const WIRE_VERSION: u16 = 1;

/// The QUIC ALPN protocol id.
pub const ALPN: &[u8] = b"fabric/1";

/// Every frame's body: the version and the message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Protocol version of the sender.
    pub v: u16,
    /// The message.
    pub msg: T,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u16,
}

/// A frame could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The peer speaks another protocol version.
    #[error("peer speaks protocol version {0}, this build speaks {WIRE_VERSION}")]
    Unsupported(u16),
    /// The frame is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(#[source] CodecError),
}

/// Encodes `msg` in an envelope of this build's version.
pub fn encode_msg<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    to_cbor(&Envelope {
        v: WIRE_VERSION,
        msg,
    })
}

/// Decodes an envelope body, telling a version mismatch from garbage.
pub fn decode_msg<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    match from_cbor::<Envelope<T>>(bytes) {
        Ok(env) if env.v == WIRE_VERSION => Ok(env.msg),
        Ok(env) => Err(WireError::Unsupported(env.v)),
        Err(e) => match from_cbor::<VersionOnly>(bytes) {
            Ok(VersionOnly { v }) if v != WIRE_VERSION => Err(WireError::Unsupported(v)),
            _ => Err(WireError::Malformed(e)),
        },
    }
}
