//! Finding the dispatcher on the LAN with mDNS (DNS-SD).
//!
//! Dispatchers announce `_fabric._udp.local.` with their public key in the
//! TXT record `key`; workers and clients browse and keep only the dispatcher
//! whose key they pinned. Which interfaces take part is explicit: tests use
//! loopback inside a network namespace they made, never real interfaces.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::{MdnsError, PublicKey};

/// The DNS-SD service type.
pub const SERVICE_TYPE: &str = "_fabric._udp.local.";

/// Which interfaces mDNS uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interfaces {
    /// Every non-loopback interface (the LAN default).
    All,
    /// IPv4 loopback only (needs `ip link set lo multicast on`).
    Loopback,
    /// One interface by name.
    Named(String),
}

impl FromStr for Interfaces {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "all" => Self::All,
            "loopback" => Self::Loopback,
            name => Self::Named(name.to_owned()),
        })
    }
}

fn mdns_err(e: mdns_sd::Error) -> MdnsError {
    MdnsError::Daemon(e.to_string())
}

fn daemon(ifaces: &Interfaces) -> Result<ServiceDaemon, MdnsError> {
    let d = ServiceDaemon::new().map_err(mdns_err)?;
    match ifaces {
        Interfaces::All => {}
        Interfaces::Loopback => {
            d.disable_interface(IfKind::All).map_err(mdns_err)?;
            d.enable_interface(IfKind::LoopbackV4).map_err(mdns_err)?;
        }
        Interfaces::Named(name) => {
            d.disable_interface(IfKind::All).map_err(mdns_err)?;
            d.enable_interface(IfKind::Name(name.clone()))
                .map_err(mdns_err)?;
        }
    }
    Ok(d)
}

/// A running announcement; dropping it stops announcing.
pub struct Announcer {
    daemon: ServiceDaemon,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Announcer")
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// Announces a dispatcher listening on `port`.
pub fn announce(key: &PublicKey, port: u16, ifaces: &Interfaces) -> Result<Announcer, MdnsError> {
    let daemon = daemon(ifaces)?;
    let short = key.short();
    let host = format!("fabric-{short}.local.");
    let key_hex = key.to_string();
    let info = ServiceInfo::new(
        SERVICE_TYPE,
        &format!("fabric-{short}"),
        &host,
        "",
        port,
        &[("key", key_hex.as_str())][..],
    )
    .map_err(mdns_err)?
    .enable_addr_auto();
    daemon.register(info).map_err(mdns_err)?;
    tracing::info!(port, ?ifaces, "announcing dispatcher on mDNS");
    Ok(Announcer { daemon })
}

/// Browses for a dispatcher with key `want` (any dispatcher when `None`)
/// until one resolves or `timeout` passes. Blocking; call it from
/// `spawn_blocking`.
pub fn discover(
    want: Option<&PublicKey>,
    ifaces: &Interfaces,
    timeout: Duration,
) -> Result<(SocketAddr, PublicKey), MdnsError> {
    let daemon = daemon(ifaces)?;
    let events = daemon.browse(SERVICE_TYPE).map_err(mdns_err)?;
    let deadline = Instant::now() + timeout;
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break None;
        }
        let Ok(event) = events.recv_timeout(left) else {
            break None;
        };
        let ServiceEvent::ServiceResolved(info) = event else {
            continue;
        };
        let Some(key) = info
            .get_property_val_str("key")
            .and_then(|k| k.parse::<PublicKey>().ok())
        else {
            continue;
        };
        if want.is_some_and(|w| *w != key) {
            tracing::debug!(%key, "ignoring a dispatcher with another key");
            continue;
        }
        let mut addrs: Vec<IpAddr> = info.get_addresses().iter().copied().collect();
        addrs.sort_by_key(|a| !a.is_ipv4());
        if let Some(ip) = addrs.first() {
            break Some((SocketAddr::new(*ip, info.get_port()), key));
        }
    };
    let _ = daemon.shutdown();
    found.ok_or(MdnsError::NotFound(timeout))
}
