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

/// One dispatcher of a group, as `fabric admin members` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its id in the group (the first 8 bytes of its key).
    pub id: u64,
    /// Its QUIC address.
    pub addr: String,
    /// Its public key (hex).
    pub key: String,
    /// Whether it votes (a learner copies the log but does not vote).
    pub voter: bool,
    /// `leader`, `follower`, `candidate`, `learner` (or
    /// `leader-without-quorum`: elected, but cut off from the majority or
    /// still taking over, so not serving) for the member that answered;
    /// for the others what it knows: `leader` or `member`.
    pub role: String,
    /// Whether this is the member that answered.
    pub this: bool,
    /// The last log index it holds: for the member that answered, its
    /// own; for the others, what the leader knows they hold (`None`
    /// elsewhere).
    pub log_index: Option<u64>,
    /// The last index applied (the member that answered only).
    pub applied: Option<u64>,
    /// The term (the member that answered).
    pub term: Option<u64>,
}
