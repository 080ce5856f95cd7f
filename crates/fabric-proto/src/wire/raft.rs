//! Messages between the dispatchers of one Raft group (issue 26).
//!
//! A [`Request::Raft`](super::Request::Raft) carries one Raft RPC, encoded
//! by the Raft layer (`fabric-raft`): this crate does not know openraft's
//! types. Only a member of the group may send one.

use serde::{Deserialize, Serialize};

/// Which Raft RPC a [`Request::Raft`](super::Request::Raft) carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftKind {
    /// Entries to append (or a heartbeat).
    Append,
    /// A vote request.
    Vote,
    /// A piece of a snapshot.
    Snapshot,
    /// A write a member that does not lead asks the leader to commit (its
    /// own setup: its admin key, its join and REST tokens).
    Propose,
}
