//! Fabric networking.
//!
//! - [`Identity`]: a node's ed25519 key, kept in its data dir (mode 0600),
//!   and the self-signed certificate QUIC presents.
//! - [`tls`]: rustls configurations that verify peers by pinned public key,
//!   never by a CA or a host name; TLS 1.3 and ed25519 only.
//! - [`Net`]: quinn endpoints (ALPN `fabric/1`) and [`peer_key`].
//! - [`framed`]: u32-length-prefixed CBOR frames on QUIC streams (the
//!   proto crate's encoder and decoder), capped both ways.
//! - [`JoinToken`]: the dispatcher key plus a secret, as one string.
//! - [`mdns`]: dispatchers announce `_fabric._udp.local.`; workers and
//!   clients browse for it.

mod error;
pub mod framed;
mod identity;
pub mod mdns;
mod net;
pub mod tls;
mod token;

pub use error::{EndpointError, MdnsError, NetError, StreamError};
pub use identity::{Identity, IdentityError, PublicKey, create_private_dir, write_private};
pub use net::{NetConfig, connect, connect_endpoint, connect_from, peer_key, server_endpoint};
pub use token::{JoinToken, TokenError};

#[cfg(test)]
mod tests;
