//! A task as the dispatcher records it and clients see it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{
    BlobRef, Limits, Priority, TaskId, TaskKind, TaskOutcome, TaskSpec, TaskStatus, WorkerKey,
};

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for a worker (possibly in retry backoff).
    Queued,
    /// Leased to a worker.
    Running,
    /// Finished with a recorded result (which may be a failure).
    Done,
    /// Cancelled before it finished.
    Cancelled,
    /// Waiting for the tasks it runs after (`--after`) to succeed; not
    /// queued yet.
    Waiting,
    /// Not to start before a time (`--delay`, `--at`, REST `not_before`);
    /// queued once it comes.
    Scheduled,
}

impl TaskState {
    /// The name used by `fabric tasks --state` and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Waiting => "waiting",
            Self::Scheduled => "scheduled",
        }
    }

    /// Whether nothing more will happen to the task.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Cancelled)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not a task state.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid task state {0:?}: expected queued, scheduled, waiting, running, done or cancelled"
)]
pub struct TaskStateParseError(String);

impl FromStr for TaskState {
    type Err = TaskStateParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "cancelled" | "canceled" => Ok(Self::Cancelled),
            "waiting" => Ok(Self::Waiting),
            "scheduled" => Ok(Self::Scheduled),
            _ => Err(TaskStateParseError(s.to_owned())),
        }
    }
}

/// The durable record of one task. The outcome is stored beside it, not in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task.
    pub id: TaskId,
    /// What was submitted.
    pub spec: TaskSpec,
    /// Submission order within the dispatcher (FIFO inside a priority).
    pub seq: u64,
    /// Current state.
    pub state: TaskState,
    /// Attempts started so far; the next manifest carries `attempt + 1`.
    pub attempt: u32,
    /// Failed attempts that counted against `spec.retries`.
    pub failures: u32,
    /// Attempts lost with their worker (these do not use the retry budget).
    pub lost: u32,
    /// Attempts a worker refused (draining, module did not load) since the
    /// task last ran; these wait with a backoff and use no budget either.
    #[serde(default)]
    pub refused: u32,
    /// Earliest instant (ms since the epoch) the task may be placed again.
    pub not_before_ms: u64,
    /// The worker holding the current lease (or, once done, the one that
    /// produced the result).
    pub worker: Option<WorkerKey>,
    /// When it was submitted (ms since the epoch).
    pub submitted_ms: u64,
    /// When its state last changed (ms since the epoch).
    pub updated_ms: u64,
    /// Final status once done or cancelled.
    pub status: Option<TaskStatus>,
    /// The task was moved to the dead-letter set.
    pub dead_letter: bool,
    /// Its latest attempts (at most [`MAX_HISTORY`]), oldest first.
    #[serde(default)]
    pub history: Vec<AttemptRecord>,
    /// Where the task's args and env are kept when they are too big to
    /// carry in the record (the dispatcher's store); `spec.args` and
    /// `spec.env` are then empty. Absent in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_blob: Option<BlobRef>,
    /// Priority steps it has climbed by waiting (aging): it is queued as
    /// its priority's rank minus this. Worked out again after a restart.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub aged: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// Attempts a task record remembers; older ones are dropped.
pub const MAX_HISTORY: usize = 16;

/// Bytes of an attempt's outcome text kept (a refusal or loss reason may
/// come from a worker); longer ones are cut.
pub const MAX_OUTCOME_TEXT: usize = 200;

/// One attempt: where it ran, when, and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// Its number.
    pub attempt: u32,
    /// The worker it was leased to.
    pub worker: WorkerKey,
    /// When it was leased (ms since the epoch).
    pub started_ms: u64,
    /// When it ended, once it did.
    pub ended_ms: Option<u64>,
    /// How it ended: a final status word (`succeeded`, `timed_out`, ...),
    /// or `lost: WHY`, `refused: WHY`, `cancelled`.
    pub outcome: Option<String>,
    /// The name the worker registered with (records from before the field
    /// have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
}

impl TaskRecord {
    /// Notes a new attempt on `worker` (the oldest is dropped past
    /// [`MAX_HISTORY`]).
    pub fn attempt_started(&mut self, worker: WorkerKey, name: Option<String>, now_ms: u64) {
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(0);
        }
        self.history.push(AttemptRecord {
            attempt: self.attempt,
            worker,
            started_ms: now_ms,
            ended_ms: None,
            outcome: None,
            worker_name: name,
        });
    }

    /// Notes how the current attempt ended, if it is the one recorded last
    /// and still open.
    pub fn attempt_ended(&mut self, now_ms: u64, outcome: impl Into<String>) {
        let attempt = self.attempt;
        if let Some(a) = self.history.last_mut()
            && a.attempt == attempt
            && a.ended_ms.is_none()
        {
            a.ended_ms = Some(now_ms);
            let mut text: String = outcome.into();
            if text.len() > MAX_OUTCOME_TEXT {
                let mut end = MAX_OUTCOME_TEXT;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push('…');
            }
            a.outcome = Some(text);
        }
    }
}

/// What clients are told about a task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task.
    pub id: TaskId,
    /// Current state.
    pub state: TaskState,
    /// Its priority.
    pub priority: Priority,
    /// What it runs.
    pub kind: TaskKind,
    /// Attempts started.
    pub attempt: u32,
    /// Retry budget.
    pub retries: u32,
    /// Worker holding the lease, if running; the one that ran it, if done.
    pub worker: Option<WorkerKey>,
    /// Submitted at (ms since the epoch).
    pub submitted_ms: u64,
    /// Last change (ms since the epoch).
    pub updated_ms: u64,
    /// Final status, once there is one.
    pub status: Option<TaskStatus>,
    /// In the dead-letter set (failed with its retries used up).
    pub dead_letter: bool,
    /// The recorded result, when asked for and present.
    pub outcome: Option<TaskOutcome>,
    /// Why a queued task is not running yet, in people's words (no worker
    /// offers the memory it asks for, every worker is busy, retry backoff).
    #[serde(default)]
    pub waiting: Option<String>,
    /// Its latest attempts, oldest first.
    #[serde(default)]
    pub history: Vec<AttemptRecord>,
    /// The name the current (or last) worker registered with, when known.
    #[serde(default)]
    pub worker_name: Option<String>,
    /// The task's correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The limits it runs under, as admitted.
    #[serde(default)]
    pub limits: Limits,
    /// Labels its worker must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// Tasks it runs after.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<TaskId>,
    /// The names of its secrets (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// Milliseconds since the Unix epoch, by this machine's clock (0 if the
/// clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl TaskRecord {
    /// A freshly admitted task: queued, no attempts yet.
    pub fn queued(id: TaskId, spec: TaskSpec, seq: u64, now_ms: u64) -> Self {
        Self {
            id,
            spec,
            seq,
            state: TaskState::Queued,
            attempt: 0,
            failures: 0,
            lost: 0,
            refused: 0,
            not_before_ms: 0,
            worker: None,
            submitted_ms: now_ms,
            updated_ms: now_ms,
            status: None,
            dead_letter: false,
            history: Vec::new(),
            args_blob: None,
            aged: 0,
        }
    }

    /// The client view, with or without the outcome.
    pub fn info(&self, outcome: Option<TaskOutcome>) -> TaskInfo {
        TaskInfo {
            id: self.id,
            state: self.state,
            priority: self.spec.priority,
            kind: self.spec.kind.clone(),
            attempt: self.attempt,
            retries: self.spec.retries,
            worker: self.worker,
            submitted_ms: self.submitted_ms,
            updated_ms: self.updated_ms,
            status: self.status,
            dead_letter: self.dead_letter,
            outcome,
            waiting: None,
            history: self.history.clone(),
            // The name its worker had when it took the task: kept with the
            // attempt, so it outlives the worker's connection.
            worker_name: self.worker.and_then(|w| {
                self.history
                    .iter()
                    .rev()
                    .find(|a| a.worker == w)
                    .and_then(|a| a.worker_name.clone())
            }),
            trace: Some(self.trace()),
            limits: self.spec.limits,
            require: self.spec.require.clone(),
            after: self.spec.after.clone(),
            secrets: self.spec.secrets.iter().map(|(k, _)| k.clone()).collect(),
        }
    }
}

impl TaskRecord {
    /// Its correlation id: the one it was given, or (for tasks stored
    /// before ids existed) its own id.
    pub fn trace(&self) -> String {
        self.spec
            .trace
            .clone()
            .unwrap_or_else(|| self.id.to_string())
    }
}

impl TaskInfo {
    /// The one word for `status` in JSON: the final status when there is
    /// one, else the state (`queued`, `running`).
    pub fn status_word(&self) -> &'static str {
        match self.status {
            Some(s) => s.as_str(),
            None => self.state.as_str(),
        }
    }
}
