//! What a worker tells whoever runs it (the CLI prints these), beside its
//! logs: started, joined, cannot reach, draining.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;

/// One thing worth telling the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// The worker is up, with what it offers.
    Started {
        /// Its name.
        name: String,
        /// Its public key (hex).
        key: String,
        /// Task slots.
        slots: u32,
        /// Memory offered to tasks, bytes.
        memory_bytes: u64,
    },
    /// Native commands are on: what it allows and the sandbox layers it has.
    Native {
        /// Program names and paths tasks may use.
        allowed: Vec<String>,
        /// Every isolation layer, on or off.
        layers: String,
    },
    /// It is about to look for the dispatcher for the first time.
    Connecting {
        /// The configured address; `None` when it looks on mDNS.
        dispatcher: Option<SocketAddr>,
    },
    /// It registered with the dispatcher at this address.
    Joined {
        /// The dispatcher's address.
        dispatcher: SocketAddr,
        /// Runs it still had from before and kept.
        adopted: usize,
    },
    /// It could not reach or lost the dispatcher; it tries again.
    Unreachable {
        /// Why, naming the dispatcher ("cannot reach the dispatcher at
        /// ADDR: ...", "lost the dispatcher at ADDR: ...").
        reason: String,
        /// When it tries again.
        retry_in: Duration,
    },
    /// It is finishing its running tasks before it stops.
    Draining {
        /// Tasks still running.
        running: u32,
    },
}

/// Where notices go: a bounded channel whose reader may be slow or gone
/// (a notice that does not fit is dropped; the logs still have it).
#[derive(Clone, Debug, Default)]
pub struct Notices(Option<mpsc::Sender<Notice>>);

impl Notices {
    /// Notices into `tx`.
    pub fn to(tx: mpsc::Sender<Notice>) -> Self {
        Self(Some(tx))
    }

    pub(crate) fn send(&self, notice: Notice) {
        if let Some(tx) = &self.0 {
            let _ = tx.try_send(notice);
        }
    }
}
