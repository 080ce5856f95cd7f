//! Finding the dispatcher on the LAN with mDNS (DNS-SD).
//!
//! Dispatchers announce `_fabric._udp.local.` with their public key in the
//! TXT record `key`; workers and clients browse and keep only the dispatcher
//! whose key they pinned. Which interfaces take part is explicit: tests use
//! loopback inside a network namespace they made, never real interfaces.
//!
//! A dispatcher announces only addresses it serves on ([`announce_addrs`]):
//! a specific listen IP is announced alone (and only on a chosen interface
//! that has it); an unspecified one (`0.0.0.0`, `[::]`) stands for the
//! addresses of the chosen interfaces. A browser hears every address of a
//! dispatcher ([`discover`]), so a worker can try each in turn.

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

impl Interfaces {
    /// Whether `addr` is on one of these interfaces.
    fn includes(&self, addr: &HostAddr) -> bool {
        match self {
            Self::All => !addr.ip.is_loopback(),
            Self::Loopback => addr.ip.is_loopback() && addr.ip.is_ipv4(),
            Self::Named(name) => addr.interface == *name,
        }
    }
}

/// One address of this host and the interface that has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostAddr {
    /// The interface's name, e.g. `eth0`.
    pub interface: String,
    /// The address.
    pub ip: IpAddr,
}

/// This host's interface addresses.
pub fn host_addrs() -> Vec<HostAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => list
            .into_iter()
            .map(|i| HostAddr {
                ip: i.ip(),
                interface: i.name,
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list this host's network interfaces");
            Vec::new()
        }
    }
}

/// The addresses a dispatcher listening on `listen` serves on, among the
/// `host`'s addresses on the chosen interfaces: `listen` itself when it is
/// a specific address, else every address of the chosen interfaces (IPv4
/// only for `0.0.0.0`; `[::]` serves both). IPv6 link-local addresses are
/// left out (they are useless without a scope).
pub fn announce_addrs(listen: IpAddr, ifaces: &Interfaces, host: &[HostAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = host
        .iter()
        .filter(|a| ifaces.includes(a))
        .map(|a| a.ip)
        .filter(|ip| match listen {
            specific if !specific.is_unspecified() => *ip == specific,
            IpAddr::V4(_) => ip.is_ipv4(),
            IpAddr::V6(_) => true,
        })
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .collect();
    out.sort();
    out.dedup();
    out
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
    /// `None` when there was nothing to announce.
    daemon: Option<ServiceDaemon>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Announcer")
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Some(daemon) = &self.daemon {
            let _ = daemon.shutdown();
        }
    }
}

/// Announces a dispatcher listening on `listen`, with only the addresses
/// it serves on (see [`announce_addrs`]). When none of them is on the
/// chosen interfaces, nothing is announced and a warning says why.
pub fn announce(
    key: &PublicKey,
    listen: SocketAddr,
    ifaces: &Interfaces,
) -> Result<Announcer, MdnsError> {
    let addrs = announce_addrs(listen.ip(), ifaces, &host_addrs());
    if addrs.is_empty() {
        tracing::warn!(
            %listen,
            ?ifaces,
            "not announcing on mDNS: the dispatcher serves on no address of the chosen interfaces \
             (listen on 0.0.0.0 or on an address of the interface, or pick it with --mdns-interface)"
        );
        return Ok(Announcer { daemon: None });
    }
    let port = listen.port();
    let daemon = daemon(ifaces)?;
    let short = key.short();
    let host = format!("fabric-{short}.local.");
    let key_hex = key.to_string();
    let info = ServiceInfo::new(
        SERVICE_TYPE,
        &format!("fabric-{short}"),
        &host,
        &addrs[..],
        port,
        &[("key", key_hex.as_str())][..],
    )
    .map_err(mdns_err)?;
    daemon.register(info).map_err(mdns_err)?;
    tracing::info!(port, ?addrs, ?ifaces, "announcing dispatcher on mDNS");
    Ok(Announcer {
        daemon: Some(daemon),
    })
}

/// Browses for a dispatcher with key `want` (any dispatcher when `None`)
/// until one resolves or `timeout` passes; returns every address it
/// announced (IPv4 first), to be tried in turn. Blocking; call it from
/// `spawn_blocking`.
pub fn discover(
    want: Option<&PublicKey>,
    ifaces: &Interfaces,
    timeout: Duration,
) -> Result<(Vec<SocketAddr>, PublicKey), MdnsError> {
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
        addrs.sort_by_key(|a| (!a.is_ipv4(), *a));
        if !addrs.is_empty() {
            let port = info.get_port();
            let addrs = addrs.into_iter().map(|ip| SocketAddr::new(ip, port));
            break Some((addrs.collect(), key));
        }
    };
    let _ = daemon.shutdown();
    found.ok_or(MdnsError::NotFound(timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Vec<HostAddr> {
        let a = |interface: &str, ip: &str| HostAddr {
            interface: interface.into(),
            ip: ip.parse().unwrap(),
        };
        vec![
            a("lo", "127.0.0.1"),
            a("lo", "::1"),
            a("eth0", "10.0.0.5"),
            a("eth0", "fe80::1"),
            a("eth0", "fd00::5"),
            a("wlan0", "192.168.1.9"),
        ]
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn a_specific_listen_address_is_announced_alone_and_only_where_it_is() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        // The bug: 127.0.0.1 announced on eth0 as eth0's address.
        assert_eq!(announce_addrs(lo, &Interfaces::All, &host()), ips(&[]));
        assert_eq!(
            announce_addrs(lo, &Interfaces::Loopback, &host()),
            ips(&["127.0.0.1"])
        );
        let eth: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            announce_addrs(eth, &Interfaces::All, &host()),
            ips(&["10.0.0.5"])
        );
        assert_eq!(
            announce_addrs(eth, &Interfaces::Named("wlan0".into()), &host()),
            ips(&[])
        );
    }

    #[test]
    fn an_unspecified_listen_address_stands_for_the_chosen_interfaces() {
        let any4: IpAddr = "0.0.0.0".parse().unwrap();
        let any6: IpAddr = "::".parse().unwrap();
        assert_eq!(
            announce_addrs(any4, &Interfaces::All, &host()),
            ips(&["10.0.0.5", "192.168.1.9"])
        );
        assert_eq!(
            announce_addrs(any4, &Interfaces::Named("eth0".into()), &host()),
            ips(&["10.0.0.5"])
        );
        assert_eq!(
            announce_addrs(any4, &Interfaces::Loopback, &host()),
            ips(&["127.0.0.1"])
        );
        // [::] serves both families; link-local IPv6 is left out.
        assert_eq!(
            announce_addrs(any6, &Interfaces::Named("eth0".into()), &host()),
            ips(&["10.0.0.5", "fd00::5"])
        );
    }
}
