//! Length-prefixed CBOR frames on QUIC streams: a thin adapter over
//! fabric-proto's frame encoder and sans-IO decoder, so there is one framing
//! implementation. Both directions are capped: a peer's header announcing
//! more than the cap is refused before its body is buffered, and a message
//! over the cap is never sent.

use fabric_proto::wire::{Envelope, WIRE_VERSION, decode_msg};
use fabric_proto::{FrameDecoder, FrameError, encode_frame};
use quinn::{RecvStream, SendStream};
use serde::{Serialize, de::DeserializeOwned};

use crate::StreamError;

/// Bytes read from the stream per step; also the most a decoder buffers
/// past a header before it can check the announced length.
const READ_CHUNK: usize = 64 << 10;

fn frame_err(e: FrameError) -> StreamError {
    match e {
        FrameError::TooLarge { len, max } => StreamError::FrameTooLarge {
            len: len as u64,
            max,
        },
        FrameError::Codec(c) => StreamError::Encode(c),
        // The decoder reports nothing else; the blocking reader's I/O and
        // truncation errors both mean the frame did not arrive whole.
        _ => StreamError::Truncated,
    }
}

/// The sending half of a framed stream.
#[derive(Debug)]
pub struct FramedSend {
    stream: SendStream,
    max: usize,
}

impl FramedSend {
    /// Frames on `stream`, none over `max` bytes.
    pub fn new(stream: SendStream, max: usize) -> Self {
        Self { stream, max }
    }

    /// Sends one message in this build's envelope.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), StreamError> {
        let frame = encode_frame(
            &Envelope {
                v: WIRE_VERSION,
                msg,
            },
            self.max,
        )
        .map_err(frame_err)?;
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    /// Sends already encoded bytes as one frame (tests speak raw bytes).
    pub async fn send_raw(&mut self, body: &[u8]) -> Result<(), StreamError> {
        if body.len() > self.max || u32::try_from(body.len()).is_err() {
            return Err(StreamError::FrameTooLarge {
                len: body.len() as u64,
                max: self.max,
            });
        }
        self.stream
            .write_all(&(body.len() as u32).to_be_bytes())
            .await?;
        self.stream.write_all(body).await?;
        Ok(())
    }

    /// Ends the stream after what was sent.
    pub fn finish(&mut self) -> Result<(), StreamError> {
        Ok(self.stream.finish()?)
    }

    /// Resolves once nobody reads this stream any more: the peer stopped
    /// it (dropped its receiving half) or the connection closed, or
    /// everything after [`FramedSend::finish`] was acknowledged. It borrows
    /// nothing, so a server can watch it while it waits for something
    /// else to send.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let stopped = self.stream.stopped();
        async move {
            let _ = stopped.await;
        }
    }
}

/// The receiving half of a framed stream.
#[derive(Debug)]
pub struct FramedRecv {
    stream: RecvStream,
    decoder: FrameDecoder,
}

impl FramedRecv {
    /// Frames from `stream`, none over `max` bytes.
    pub fn new(stream: RecvStream, max: usize) -> Self {
        Self {
            stream,
            decoder: FrameDecoder::new(max),
        }
    }

    /// Reads one frame's body; `None` when the stream ended cleanly between
    /// frames.
    pub async fn recv_raw(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        loop {
            if let Some(body) = self.decoder.poll_frame().map_err(frame_err)? {
                return Ok(Some(body));
            }
            match self.stream.read_chunk(READ_CHUNK, true).await? {
                Some(chunk) => self.decoder.handle_bytes(&chunk.bytes).map_err(frame_err)?,
                None if self.decoder.buffered() == 0 => return Ok(None),
                None => return Err(StreamError::Truncated),
            }
        }
    }

    /// Reads and decodes one message; `None` on a clean end of stream.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, StreamError> {
        match self.recv_raw().await? {
            Some(bytes) => Ok(Some(decode_msg(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Reads one message, treating the end of the stream as an error.
    pub async fn expect<T: DeserializeOwned>(&mut self) -> Result<T, StreamError> {
        self.recv().await?.ok_or(StreamError::Eof)
    }

    /// Tells the peer to stop sending (after a refused frame).
    pub fn stop(&mut self) {
        let _ = self.stream.stop(1u32.into());
    }
}

/// Opens a bidirectional stream on `conn` as a framed pair.
pub async fn open(
    conn: &quinn::Connection,
    max: usize,
) -> Result<(FramedSend, FramedRecv), StreamError> {
    let (send, recv) = conn.open_bi().await?;
    Ok((FramedSend::new(send, max), FramedRecv::new(recv, max)))
}

/// Accepts the next bidirectional stream the peer of `conn` opens, framed.
pub async fn accept(
    conn: &quinn::Connection,
    max: usize,
) -> Result<(FramedSend, FramedRecv), StreamError> {
    let (send, recv) = conn.accept_bi().await?;
    Ok((FramedSend::new(send, max), FramedRecv::new(recv, max)))
}
