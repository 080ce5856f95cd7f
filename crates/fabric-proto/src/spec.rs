//! What a client asks the cluster to run.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Limits, Sha256};

/// The two kinds of work Fabric runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A wasm32-wasip1 module, identified by the SHA-256 of its bytes.
    Wasm {
        /// Digest of the module's bytes.
        module: Sha256,
    },
    /// An allow-listed native program, run in the process sandbox.
    Command {
        /// Program name or path; the worker resolves it against its allow-list.
        program: String,
    },
}

/// Scheduling priority; FIFO within one priority.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Runs before everything else.
    High,
    /// The default.
    #[default]
    Normal,
    /// Runs when nothing else waits.
    Low,
}

impl Priority {
    /// Queue rank: lower runs first. The scheduler's queue and the store's
    /// `live` index both order by it.
    pub fn rank(self) -> u8 {
        match self {
            Self::High => 0,
            Self::Normal => 1,
            Self::Low => 2,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        })
    }
}

/// A string is not a priority name.
#[derive(Debug, thiserror::Error)]
#[error("invalid priority {0:?}: expected high, normal or low")]
pub struct PriorityParseError(String);

impl FromStr for Priority {
    type Err = PriorityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "high" => Ok(Self::High),
            "normal" => Ok(Self::Normal),
            "low" => Ok(Self::Low),
            _ => Err(PriorityParseError(s.to_owned())),
        }
    }
}

/// A task as submitted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// What to run.
    pub kind: TaskKind,
    /// Arguments after the program name (`argv[1..]`).
    pub args: Vec<String>,
    /// Environment, exactly as given: nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Bytes fed to the task's stdin.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
    /// Resource limits.
    pub limits: Limits,
    /// Scheduling priority.
    pub priority: Priority,
    /// How many times a failed attempt is retried.
    pub retries: u32,
}

impl TaskSpec {
    /// A wasm task for `module` with no args, env or input, default limits,
    /// normal priority and no retries.
    pub fn wasm(module: Sha256) -> Self {
        Self {
            kind: TaskKind::Wasm { module },
            args: Vec::new(),
            env: Vec::new(),
            input: Vec::new(),
            limits: Limits::default(),
            priority: Priority::Normal,
            retries: 0,
        }
    }
}
