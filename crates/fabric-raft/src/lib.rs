//! Fabric's dispatchers as one Raft group (issue 26), on openraft 0.9.
//!
//! - [`LogStore`] keeps the Raft log and vote in the store's sled database
//!   (`raft_log`, `raft_meta`), durable before openraft is told so.
//! - [`StateMachine`] applies each entry's [`Command`] to the replicated
//!   trees ([`Store::apply`](fabric_store::Store::apply)) and snapshots them.
//!
//! The plan, and what is built of it, are in `docs/ha-plan.md` and
//! `docs/architecture.md`.

// openraft's traits return its `StorageError` (a large value); the helpers
// that make it return it too.
#![allow(clippy::result_large_err)]

mod codec;
mod log_store;
mod network;
mod node;
mod state_machine;

use std::io::Cursor;

pub use fabric_store::{Applied, Command};
pub use log_store::LogStore;
pub use network::{PeerClient, QuicNetwork, Transport, serve};
pub use node::{NodeStatus, RaftConfig, RaftNode, StartError, WriteError};
pub use state_machine::StateMachine;

/// A member of the group: where it listens and the key it is pinned by.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Its QUIC address (`host:port`).
    pub addr: String,
    /// Its ed25519 public key.
    pub key: [u8; 32],
    /// Its REST API's URL, if it serves one (where a follower's REST API
    /// redirects).
    #[serde(default)]
    pub api_url: Option<String>,
}

/// A member's id in the group: the first 8 bytes of its key, big-endian.
pub fn member_id(key: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_be_bytes(b)
}

openraft::declare_raft_types!(
    /// Fabric's Raft types.
    pub Fabric:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<Fabric>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// openraft's storage error, for this group.
pub type StorageError = openraft::StorageError<u64>;
