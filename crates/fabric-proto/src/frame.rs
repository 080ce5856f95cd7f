//! Length-prefixed framing: a u32 big-endian length, then that many bytes of
//! CBOR. A frame whose declared length exceeds the cap is refused from its
//! four header bytes alone, before any buffer for it is allocated.

use std::io::Read;

use serde::Serialize;

use crate::codec::{CodecError, to_cbor};

/// Default cap on one frame's body: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// A frame could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared or actual body length is over the cap.
    #[error("frame of {len} bytes exceeds the {max}-byte cap")]
    TooLarge {
        /// Body length declared (or produced).
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({have} of {want} bytes)")]
    Truncated {
        /// Bytes received.
        have: usize,
        /// Bytes the header promised (header included).
        want: usize,
    },
    /// The body could not be encoded.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Reading failed.
    #[error("reading frame: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes `msg` as one frame (header included).
pub fn encode_frame<T: Serialize + ?Sized>(msg: &T, max: usize) -> Result<Vec<u8>, FrameError> {
    let body = to_cbor(msg)?;
    let len = checked_len(body.len(), max)?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn checked_len(len: usize, max: usize) -> Result<u32, FrameError> {
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max })
}

/// Reads one frame body from `r`. `Ok(None)` means a clean end of stream
/// before any header byte.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut have = 0;
    while have < 4 {
        match r.read(&mut header[have..])? {
            0 if have == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated { have, want: 4 }),
            n => have += n,
        }
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match r.read(&mut body[got..])? {
            0 => {
                return Err(FrameError::Truncated {
                    have: 4 + got,
                    want: 4 + len,
                });
            }
            n => got += n,
        }
    }
    Ok(Some(body))
}

/// Incremental, sans-IO frame decoder: feed bytes with
/// [`FrameDecoder::handle_bytes`], take complete bodies with
/// [`FrameDecoder::poll_frame`].
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that refuses bodies over `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            max,
        }
    }

    /// Appends received bytes. Fails as soon as a header declares an
    /// oversized body, before its bytes are buffered.
    pub fn handle_bytes(&mut self, data: &[u8]) -> Result<(), FrameError> {
        self.buf.extend_from_slice(data);
        self.check_header()
    }

    fn check_header(&self) -> Result<(), FrameError> {
        if let Some(h) = self.buf.get(..4) {
            let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if len > self.max {
                return Err(FrameError::TooLarge { len, max: self.max });
            }
        }
        Ok(())
    }

    /// Takes the next complete frame body, if one is buffered.
    pub fn poll_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        self.check_header()?;
        let Some(h) = self.buf.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[4..4 + len].to_vec();
        self.buf.drain(..4 + len);
        Ok(Some(body))
    }

    /// Bytes buffered but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::from_cbor;

    #[test]
    fn oversized_header_is_refused_before_the_body() {
        let mut header = (DEFAULT_MAX_FRAME as u32 + 1).to_be_bytes().to_vec();
        let err = read_frame(&mut &header[..], DEFAULT_MAX_FRAME).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        header.truncate(4);
        assert!(matches!(
            d.handle_bytes(&header),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            encode_frame(&vec![0u8; 100], 10),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_streams_are_errors_and_clean_eof_is_none() {
        assert!(read_frame(&mut &[][..], 100).unwrap().is_none());
        assert!(matches!(
            read_frame(&mut &[0, 0][..], 100),
            Err(FrameError::Truncated { .. })
        ));
        assert!(matches!(
            read_frame(&mut &[0, 0, 0, 5, 1][..], 100),
            Err(FrameError::Truncated { .. })
        ));
    }

    proptest! {
        #[test]
        fn frames_round_trip_through_any_chunking(
            msgs in prop::collection::vec(prop::collection::vec(".{0,12}", 0..5), 1..6),
            chunk in 1usize..17,
        ) {
            let mut wire = Vec::new();
            for m in &msgs {
                wire.extend(encode_frame(m, DEFAULT_MAX_FRAME).unwrap());
            }
            // Blocking reader.
            let mut r = &wire[..];
            for m in &msgs {
                let body = read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap().unwrap();
                prop_assert_eq!(&from_cbor::<Vec<String>>(&body).unwrap(), m);
            }
            prop_assert!(read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap().is_none());
            // Sans-IO decoder fed in chunks.
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            let mut out = Vec::new();
            for c in wire.chunks(chunk) {
                d.handle_bytes(c).unwrap();
                while let Some(body) = d.poll_frame().unwrap() {
                    out.push(from_cbor::<Vec<String>>(&body).unwrap());
                }
            }
            prop_assert_eq!(out, msgs);
            prop_assert_eq!(d.buffered(), 0);
        }

        #[test]
        fn garbage_never_panics_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut d = FrameDecoder::new(32);
            if d.handle_bytes(&bytes).is_ok() {
                while let Ok(Some(body)) = d.poll_frame() {
                    let _ = from_cbor::<Vec<String>>(&body);
                }
            }
        }
    }
}
