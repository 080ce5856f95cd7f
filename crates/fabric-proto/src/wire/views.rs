//! What the dispatcher tells about the cluster: workers, caps, counts,
//! tokens.

use serde::{Deserialize, Serialize};

use crate::TaskId;

/// What a worker offers the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Human name (host name by default).
    pub name: String,
    /// Tasks it runs at once.
    pub slots: u32,
    /// Memory it can give tasks in all, in bytes.
    pub memory_bytes: u64,
    /// Free-form labels.
    pub labels: Vec<String>,
    /// Whether it runs wasm tasks.
    pub wasm: bool,
    /// Native programs on its allow-list (names as submitted).
    pub commands: Vec<String>,
    /// Attempts still running here from an earlier session (a reconnect):
    /// the dispatcher adopts those it still leases here and has the worker
    /// cancel the rest.
    #[serde(default)]
    pub running: Vec<(TaskId, u32)>,
}

/// What clients are told about a worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// The worker's public key.
    pub key: crate::WorkerKey,
    /// Its address as the dispatcher sees it.
    pub addr: String,
    /// What it registered.
    pub info: WorkerInfo,
    /// Tasks leased to it now.
    pub running: u32,
    /// Last heartbeat (ms since the epoch).
    pub last_seen_ms: u64,
    /// Ready, draining, down (connection lost, declared dead or left) or
    /// removed (by an admin).
    #[serde(default)]
    pub state: WorkerState,
    /// When it went down or was removed (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Why it is down or removed, in the operator's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What the cluster admits: the most a task may ask for, so a client can
/// refuse in its own terms before uploading anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCaps {
    /// The largest limits a task may ask for.
    pub limits: crate::LimitCaps,
    /// Largest task input, bytes.
    pub max_input_bytes: u64,
    /// Largest module, bytes.
    pub max_module_bytes: u64,
    /// Most bytes of args plus env.
    pub max_args_bytes: u64,
    /// Most retries a task may ask for.
    pub max_retries: u32,
}

/// How many tasks the dispatcher holds, by state and final status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// Every task in the history (finished ones until retention removes
    /// them).
    pub total: u64,
    /// Waiting for a worker (or for a retry's backoff).
    pub queued: u64,
    /// Leased to a worker.
    pub running: u64,
    /// Finished tasks per final status (every status listed, zeros too).
    pub finished: Vec<(crate::TaskStatus, u64)>,
    /// Tasks in the dead-letter set.
    pub dead_letters: u64,
}

impl TaskCounts {
    /// Finished tasks with status `s`.
    pub fn finished(&self, s: crate::TaskStatus) -> u64 {
        self.finished
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(0, |(_, n)| *n)
    }
}

/// Whether a worker takes new work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Connected and taking work.
    #[default]
    Ready,
    /// Finishing what it runs; takes nothing new.
    Draining,
    /// Its connection was lost, it was declared dead, or it left; it may
    /// come back.
    Down,
    /// An admin removed it (`fabric workers remove`): it must join again.
    Removed,
}

impl WorkerState {
    /// Its name: `ready`, `draining`, `down`, `removed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Draining => "draining",
            Self::Down => "down",
            Self::Removed => "removed",
        }
    }
}

/// What clients are told about a join token; never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    /// Names the token in `list` and `revoke` and reveals nothing of the
    /// secret: for a join token the first hex characters of the secret's
    /// sha256, for a REST token the random id its text starts with.
    pub id: String,
    /// When it was minted (ms since the epoch; 0 if not recorded).
    pub created_ms: u64,
    /// When it stops being accepted; `None`: never.
    pub expires_ms: Option<u64>,
    /// Joins it still allows; `None`: unlimited.
    pub uses_left: Option<u32>,
    /// Revoked by an operator.
    pub revoked: bool,
    /// For a REST API token, its role; `None`: a join token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::ApiRole>,
}
