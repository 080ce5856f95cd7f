//! quinn endpoints.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::CertificateDer;

use crate::{EndpointError, Identity, PublicKey, tls};

/// Transport settings shared by all endpoints.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Largest frame accepted.
    pub max_frame: usize,
    /// QUIC keep-alive interval.
    pub keep_alive: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Concurrent bidirectional streams a peer may open.
    pub max_streams: u32,
    /// Streams a server lets a peer open before it knows the peer's role
    /// (it raises the limit for known keys after the handshake: QUIC stream
    /// credit can be raised, never taken back).
    pub unknown_peer_streams: u32,
    /// A stream whose first request has not arrived whole by then is
    /// closed.
    pub request_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            max_frame: fabric_proto::DEFAULT_MAX_FRAME,
            keep_alive: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(15),
            max_streams: 4096,
            unknown_peer_streams: 8,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl NetConfig {
    /// For short-lived clients (the CLI, programs on the client library):
    /// keep-alives every 750 ms and a 3 s idle timeout, so a client
    /// following a task notices within 3 s that its dispatcher is gone
    /// (QUIC takes the smaller of the two sides' idle timeouts).
    pub fn for_clients() -> Self {
        Self {
            keep_alive: Duration::from_millis(750),
            idle_timeout: Duration::from_secs(3),
            ..Self::default()
        }
    }
}

fn transport(cfg: &NetConfig, streams: u32) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(cfg.keep_alive));
    t.max_idle_timeout(cfg.idle_timeout.try_into().ok());
    t.max_concurrent_bidi_streams(streams.into());
    t.max_concurrent_uni_streams(0u32.into());
    Arc::new(t)
}

fn client_cfg(
    id: &Identity,
    pinned: Vec<PublicKey>,
    cfg: &NetConfig,
) -> Result<quinn::ClientConfig, EndpointError> {
    let tls = tls::client_config(id, pinned)?;
    let quic = QuicClientConfig::try_from(tls)
        .map_err(|e| EndpointError::Tls(rustls::Error::General(e.to_string())))?;
    let mut c = quinn::ClientConfig::new(Arc::new(quic));
    c.transport_config(transport(cfg, cfg.max_streams));
    Ok(c)
}

fn bind_err(addr: SocketAddr) -> impl FnOnce(std::io::Error) -> EndpointError {
    move |source| match source.kind() {
        std::io::ErrorKind::AddrInUse => EndpointError::InUse { addr },
        _ => EndpointError::Bind { addr, source },
    }
}

/// A listening endpoint that presents `id` and accepts any ed25519 client
/// (the application decides what each key may do).
pub fn server_endpoint(
    id: &Identity,
    addr: SocketAddr,
    cfg: &NetConfig,
) -> Result<quinn::Endpoint, EndpointError> {
    let tls = tls::server_config(id)?;
    let quic = QuicServerConfig::try_from(tls)
        .map_err(|e| EndpointError::Tls(rustls::Error::General(e.to_string())))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(transport(cfg, cfg.unknown_peer_streams));
    let socket = std::net::UdpSocket::bind(addr).map_err(bind_err(addr))?;
    let runtime = quinn::default_runtime().ok_or_else(|| EndpointError::Bind {
        addr,
        source: std::io::Error::other("no async runtime"),
    })?;
    quinn::Endpoint::new(reset_config(id), Some(server), socket, runtime).map_err(bind_err(addr))
}

/// Endpoint settings whose stateless-reset key comes from the node's own
/// key: a dispatcher restarted on the same data dir answers packets of
/// connections from before its restart with a reset its peers can check,
/// so they learn at their next packet (a keep-alive) that the connection
/// is gone, not after the idle timeout.
fn reset_config(id: &Identity) -> quinn::EndpointConfig {
    use sha2::Digest as _;
    let mut derive = sha2::Sha256::new();
    derive.update(b"fabric stateless reset v1\0");
    derive.update(id.signing_key().to_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &derive.finalize());
    let mut config = quinn::EndpointConfig::new(Arc::new(key));
    // quinn's default ids carry a keyed check that changes at each start,
    // and packets failing it are dropped, never reset. Fully random 8-byte
    // ids have no check, so a restarted node resets its old connections;
    // and with 2^64 of them, collecting the reset tokens of one's own ids
    // tells nothing about another peer's.
    config.cid_generator(|| Box::new(quinn_proto::RandomConnectionIdGenerator::new(8)));
    config
}

/// Connects to `addr`, trusting only `pinned`; presents `id`.
pub async fn connect(
    id: &Identity,
    pinned: Vec<PublicKey>,
    addr: SocketAddr,
    cfg: &NetConfig,
) -> Result<quinn::Connection, EndpointError> {
    Ok(connect_endpoint(id, pinned, addr, cfg).await?.1)
}

/// [`connect`], also returning the endpoint, so a short-lived client can
/// wait for its close to reach the peer ([`quinn::Endpoint::wait_idle`])
/// before the process exits.
pub async fn connect_endpoint(
    id: &Identity,
    pinned: Vec<PublicKey>,
    addr: SocketAddr,
    cfg: &NetConfig,
) -> Result<(quinn::Endpoint, quinn::Connection), EndpointError> {
    let bind: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = quinn::Endpoint::client(bind).map_err(bind_err(bind))?;
    let connecting = endpoint
        .connect_with(client_cfg(id, pinned, cfg)?, addr, "fabric")
        .map_err(|source| EndpointError::Connect { addr, source })?;
    let conn = connecting
        .await
        .map_err(|source| EndpointError::Handshake { addr, source })?;
    Ok((endpoint, conn))
}

/// Connects to `addr` from an endpoint that already exists (a
/// dispatcher's own listening endpoint, so its peers see one address for
/// it), trusting only `pinned`; presents `id`.
pub async fn connect_from(
    endpoint: &quinn::Endpoint,
    id: &Identity,
    pinned: Vec<PublicKey>,
    addr: SocketAddr,
    cfg: &NetConfig,
) -> Result<quinn::Connection, EndpointError> {
    endpoint
        .connect_with(client_cfg(id, pinned, cfg)?, addr, "fabric")
        .map_err(|source| EndpointError::Connect { addr, source })?
        .await
        .map_err(|source| EndpointError::Handshake { addr, source })
}

/// The ed25519 key the peer of `conn` proved in the handshake.
pub fn peer_key(conn: &quinn::Connection) -> Option<PublicKey> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    tls::cert_key(certs.first()?).ok()
}
