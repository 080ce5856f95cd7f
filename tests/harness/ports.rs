//! Ports for the processes a test starts, picked so that two never meet.
//!
//! A port the kernel handed out (bind to port 0, then let go) can be
//! handed out again before the test's process binds it: to another test's
//! pick, or as the ephemeral port of any client socket in the run (QUIC
//! clients bind port 0). A group test failed so ("port 38912 is in use").
//! Ports here come from below the kernel's ephemeral range, each at most
//! once per test run, and only when both TCP and UDP can bind them now.

use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the picks start: below the ephemeral range (32768 and up here;
/// `/proc/sys/net/ipv4/ip_local_port_range`), above the well-known ports.
const LOW: u32 = 20_000;
/// How many ports there are to pick from.
const SPAN: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port on 127.0.0.1 free for both TCP and UDP now, that no other pick
/// of this test run gives out and the kernel hands no client.
pub fn free_port() -> u16 {
    // A different start per run, so a leftover process of an earlier run
    // is not met either.
    let start = std::process::id() % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + (start + n) % SPAN).expect("under 32768");
        let tcp = TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN);
}
