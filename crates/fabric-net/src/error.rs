use fabric_proto::wire::{ErrorBody, WireError};

/// A network operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Socket setup failed.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TLS configuration failed.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The connection attempt failed before it started.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectError,
    },
    /// The connection failed or was closed.
    #[error("connection failed: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from a stream failed.
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadExactError),
    /// The stream was already finished.
    #[error("stream already closed")]
    ClosedStream(#[from] quinn::ClosedStream),
    /// The peer announced a frame over the cap.
    #[error("frame of {len} bytes is over the {max}-byte cap")]
    FrameTooLarge {
        /// Announced length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// The stream ended before a frame did.
    #[error("stream ended in the middle of a frame")]
    Truncated,
    /// The stream ended where a message was expected.
    #[error("peer closed the stream without answering")]
    Eof,
    /// A frame could not be decoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A message could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[from] fabric_proto::CodecError),
    /// The peer answered with an error.
    #[error("{0}")]
    Remote(ErrorBody),
    /// The peer sent a message that does not fit the exchange.
    #[error("unexpected message from peer: {0}")]
    Unexpected(String),
    /// The peer did not present an ed25519 identity.
    #[error("peer presented no usable ed25519 identity")]
    NoPeerKey,
    /// mDNS failed.
    #[error("mDNS: {0}")]
    Mdns(String),
    /// Timed out.
    #[error("timed out after {0:?} {1}")]
    Timeout(std::time::Duration, &'static str),
}
