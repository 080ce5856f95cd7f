//! Network errors, one enum per area: endpoints (bind, TLS, connect,
//! handshake), streams (framing and the QUIC stream under it) and mDNS.
//! [`NetError`] gathers them for callers that do all three.

use std::net::SocketAddr;
use std::time::Duration;

use fabric_proto::wire::WireError;

/// Setting up an endpoint or a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The UDP port is taken.
    #[error("port {} is in use on {} (another fabric dispatcher?); pick another with --listen", .addr.port(), .addr.ip())]
    InUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The UDP socket could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The connection attempt could not start (bad address, no endpoint).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectError,
    },
    /// The handshake failed: nobody answered, the peer is not the pinned
    /// key, or it does not speak Fabric.
    #[error("connection to {addr} failed: {source}")]
    Handshake {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: quinn::ConnectionError,
    },
}

/// Exchanging frames on a stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The connection under the stream failed or was closed.
    #[error("connection lost: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing failed.
    #[error("stream write failed: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading failed.
    #[error("stream read failed: {0}")]
    Read(#[from] quinn::ReadError),
    /// The stream was already finished.
    #[error("stream already closed")]
    Closed(#[from] quinn::ClosedStream),
    /// A frame (announced by the peer, or about to be sent) is over the cap.
    #[error("frame of {len} bytes is over the {max}-byte cap")]
    FrameTooLarge {
        /// Its length.
        len: u64,
        /// The cap.
        max: usize,
    },
    /// The stream ended inside a frame.
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
}

/// mDNS announce or browse failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MdnsError {
    /// The mDNS daemon failed.
    #[error("mDNS: {0}")]
    Daemon(String),
    /// No matching dispatcher answered in time.
    #[error("no dispatcher answered on mDNS within {0:?}")]
    NotFound(Duration),
}

/// Any network failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// An endpoint or connection could not be set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// A stream exchange failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// mDNS failed.
    #[error(transparent)]
    Mdns(#[from] MdnsError),
}
