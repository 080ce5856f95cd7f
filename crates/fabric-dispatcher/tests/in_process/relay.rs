//! A UDP relay between a worker and the dispatcher that a test can cut,
//! to break a worker's connection without either side going away.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Peers one relay forwards for at most (the tests use one or two).
const MAX_PEERS: usize = 16;

/// Forwards datagrams between the peers that send to [`Relay::addr`] and
/// one target, each peer through an upstream socket of its own, while not
/// cut.
pub struct Relay {
    /// Where peers send to.
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Relay {
    /// Starts relaying to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("relay binds"));
        let addr = front.local_addr().expect("relay address");
        let cut = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(forward(front, target, cut.clone()));
        Self { addr, cut, task }
    }

    /// Drops every datagram both ways from now on (`true`), or relays again.
    pub fn cut(&self, on: bool) {
        self.cut.store(on, Ordering::Release);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(front: Arc<UdpSocket>, target: SocketAddr, cut: Arc<AtomicBool>) {
    let mut upstream: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    // The return paths go when this task is aborted.
    let mut returns = tokio::task::JoinSet::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, peer)) = front.recv_from(&mut buf).await else {
            return;
        };
        if cut.load(Ordering::Acquire) {
            continue;
        }
        let up = match upstream.get(&peer) {
            Some(up) => up.clone(),
            None if upstream.len() < MAX_PEERS => {
                let up = Arc::new(
                    UdpSocket::bind("127.0.0.1:0")
                        .await
                        .expect("upstream binds"),
                );
                returns.spawn(back(up.clone(), front.clone(), peer, cut.clone()));
                upstream.insert(peer, up.clone());
                up
            }
            None => continue,
        };
        let _ = up.send_to(&buf[..n], target).await;
    }
}

/// The dispatcher's answers to one peer.
async fn back(up: Arc<UdpSocket>, front: Arc<UdpSocket>, peer: SocketAddr, cut: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok(n) = up.recv(&mut buf).await else {
            return;
        };
        if !cut.load(Ordering::Acquire) {
            let _ = front.send_to(&buf[..n], peer).await;
        }
    }
}
