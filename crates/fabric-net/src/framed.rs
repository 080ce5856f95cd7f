//! Length-prefixed CBOR frames on QUIC streams.

use fabric_proto::wire::{decode_msg, encode_msg};
use quinn::{ReadExactError, RecvStream, SendStream};
use serde::{Serialize, de::DeserializeOwned};

use crate::NetError;

/// Sends one message as a frame.
pub async fn send<T: Serialize>(stream: &mut SendStream, msg: &T) -> Result<(), NetError> {
    let body = encode_msg(msg)?;
    let len = u32::try_from(body.len()).map_err(|_| NetError::FrameTooLarge {
        len: body.len() as u64,
        max: u32::MAX as usize,
    })?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    Ok(())
}

/// Reads one frame's bytes; `None` when the stream ended cleanly between
/// frames. A header announcing more than `max` bytes is refused before any
/// allocation.
pub async fn recv_raw(stream: &mut RecvStream, max: usize) -> Result<Option<Vec<u8>>, NetError> {
    let mut header = [0u8; 4];
    match stream.read_exact(&mut header).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(ReadExactError::FinishedEarly(_)) => return Err(NetError::Truncated),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(NetError::FrameTooLarge {
            len: len as u64,
            max,
        });
    }
    let mut body = vec![0u8; len];
    match stream.read_exact(&mut body).await {
        Ok(()) => Ok(Some(body)),
        Err(ReadExactError::FinishedEarly(_)) => Err(NetError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Reads and decodes one message; `None` on a clean end of stream.
pub async fn recv<T: DeserializeOwned>(
    stream: &mut RecvStream,
    max: usize,
) -> Result<Option<T>, NetError> {
    match recv_raw(stream, max).await? {
        Some(bytes) => Ok(Some(decode_msg(&bytes)?)),
        None => Ok(None),
    }
}

/// Reads one message, treating the end of the stream as an error.
pub async fn expect<T: DeserializeOwned>(
    stream: &mut RecvStream,
    max: usize,
) -> Result<T, NetError> {
    recv(stream, max).await?.ok_or(NetError::Eof)
}
