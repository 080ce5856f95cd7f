//! The cluster's JSON shapes: workers, stats, health.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// A registered worker.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkerView {
    /// Its key (hex).
    pub key: String,
    /// The name it registered with.
    pub name: String,
    /// Where it connects from.
    pub addr: String,
    /// `ready`, `draining`, `down` (connection lost, declared dead or
    /// left) or `removed` (by an admin); the last two are listed for a day.
    pub state: String,
    /// Slots it offers.
    pub slots: u32,
    /// Slots in use.
    pub running: u32,
    /// Memory it offers tasks, bytes.
    pub memory_bytes: u64,
    /// Its labels.
    pub labels: Vec<String>,
    /// Whether it runs wasm tasks.
    pub wasm: bool,
    /// The native programs it allows.
    pub commands: Vec<String>,
    /// Its last heartbeat, ms since the epoch.
    pub last_seen_ms: u64,
    /// When it went down or was removed, ms since the epoch.
    pub since_ms: Option<u64>,
    /// Why it is down or removed.
    pub why: Option<String>,
}

/// A dispatcher of a group, as the one answering sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MemberJson {
    /// Its key (hex).
    pub key: String,
    /// Its QUIC address.
    pub addr: String,
    /// Whether it votes (a learner copies the log but does not vote).
    pub voter: bool,
    /// For the dispatcher that answered: `leader`, `follower`,
    /// `candidate`, `learner` or `leader-without-quorum` (elected but not
    /// serving); for the others what it knows: `leader` or `member`.
    pub role: String,
    /// Whether this is the dispatcher that answered.
    pub this: bool,
    /// The last log index it holds (its own, or what the leader knows).
    pub log_index: Option<u64>,
    /// The last index applied (the dispatcher that answered only).
    pub applied: Option<u64>,
    /// The Raft term (the dispatcher that answered only).
    pub term: Option<u64>,
}

/// The cluster's figures.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Stats {
    /// Tasks in the history, finished or not.
    pub total: u64,
    /// Tasks waiting for a worker.
    pub queued: u64,
    /// Tasks holding a lease.
    pub running: u64,
    /// Finished tasks per final status.
    pub finished: BTreeMap<String, u64>,
    /// Tasks in the dead-letter set.
    pub dead_letters: u64,
    /// Registered workers with a connection.
    pub workers: u64,
    /// Free slots on workers that are not draining.
    pub free_slots: u64,
}

/// The dispatcher is up.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok`.
    pub status: String,
    /// The dispatcher's version.
    pub version: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// The store: `ok`, or why it cannot be read.
    pub store: String,
    /// Tasks the store holds (finished ones until retention removes them).
    pub stored_tasks: u64,
    /// Encryption at rest: what wraps the data keys, which one seals new
    /// values, and whether a rewrap is under way.
    pub keys: KeyHealth,
    /// In a group of dispatchers: this one's role and log position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupHealth>,
}

/// A member of a group of dispatchers as `/health` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GroupHealth {
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    /// The Raft term.
    pub term: u64,
    /// The last index in its log.
    pub log_index: Option<u64>,
    /// The last index it applied.
    pub applied: Option<u64>,
    /// The members (voters and learners).
    pub members: usize,
    /// The leader's REST URL, when another member leads.
    pub leader_api_url: Option<String>,
}

/// The keyring's state as `/health` shows it (no key material).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyHealth {
    /// `operator` (the operator's key file wraps the data keys) or
    /// `local` (a key beside the data does: a copy of the data dir is
    /// readable).
    pub wrap: String,
    /// The data key new values are sealed with.
    pub active_key: u32,
    /// How many data keys the keyring holds.
    pub keys: usize,
    /// A rewrap is re-sealing old values.
    pub rewrapping: bool,
}

/// The token a request carried.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// Its id (as `fabric token list` shows it).
    pub id: String,
    /// `read`, `submit` or `admin`.
    pub role: String,
}
