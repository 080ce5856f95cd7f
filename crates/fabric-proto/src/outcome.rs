//! How a task ended, in the same words the CLI and REST use.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The final status of a task. The names are part of the user contract
/// (`--json`, REST): lower-case snake case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Ran to an exit with code 0.
    Succeeded,
    /// Ran to an exit with a non-zero code of its own.
    Failed,
    /// Used up its fuel.
    FuelExhausted,
    /// Tried to grow memory (or a table) past its limit.
    MemoryExceeded,
    /// Ran past its wall-clock timeout.
    TimedOut,
    /// Hit a wasm trap (unreachable, stack overflow, out-of-bounds access, ...).
    Trapped,
    /// Cancelled before it finished.
    Cancelled,
    /// Refused before it ran (invalid module, missing import, bad limits).
    Rejected,
    /// Never ran: a task it was to run after did not succeed.
    Skipped,
}

impl TaskStatus {
    /// Every status, in declaration order.
    pub const ALL: [TaskStatus; 9] = [
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::FuelExhausted,
        TaskStatus::MemoryExceeded,
        TaskStatus::TimedOut,
        TaskStatus::Trapped,
        TaskStatus::Cancelled,
        TaskStatus::Rejected,
        TaskStatus::Skipped,
    ];

    /// The process exit code the CLI uses for a task that ended this way,
    /// given the task's own exit code when it had one.
    pub fn cli_exit_code(self, task_exit: Option<i32>) -> i32 {
        match self {
            Self::Succeeded | Self::Failed => task_exit.unwrap_or(1),
            Self::TimedOut => 124,
            Self::FuelExhausted => 125,
            Self::MemoryExceeded => 126,
            Self::Trapped => 127,
            Self::Rejected => 2,
            Self::Cancelled | Self::Skipped => 1,
        }
    }

    /// The contract name, e.g. `fuel_exhausted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::FuelExhausted => "fuel_exhausted",
            Self::MemoryExceeded => "memory_exceeded",
            Self::TimedOut => "timed_out",
            Self::Trapped => "trapped",
            Self::Cancelled => "cancelled",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything recorded about one finished run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// How it ended.
    pub status: TaskStatus,
    /// The task's own exit code, when it exited (WASI `proc_exit` or return
    /// from `_start`, which is 0).
    pub exit_code: Option<i32>,
    /// Captured stdout, up to the output cap.
    #[serde(with = "serde_bytes")]
    pub stdout: Vec<u8>,
    /// Captured stderr, up to the output cap.
    #[serde(with = "serde_bytes")]
    pub stderr: Vec<u8>,
    /// Stdout was longer than the cap and was cut.
    pub stdout_truncated: bool,
    /// Stderr was longer than the cap and was cut.
    pub stderr_truncated: bool,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: u64,
    /// Largest linear memory the task reached, in bytes.
    pub peak_memory_bytes: u64,
    /// Why it ended when that was not a plain exit: the trap, the limit hit,
    /// or the rejection reason.
    pub message: Option<String>,
    /// Files a native task's output globs matched, brought back from its
    /// scratch dir (capped in all by [`MAX_OUTPUT_FILES_BYTES`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<OutputFile>,
}

/// Most bytes of output files one result carries (they travel in the
/// report's frame beside stdout and stderr).
pub const MAX_OUTPUT_FILES_BYTES: u64 = 4 << 20;

/// A file brought back from a native task's scratch dir.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Its path relative to the scratch dir.
    pub path: String,
    /// Its bytes.
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
    /// Whether it was executable.
    #[serde(default)]
    pub executable: bool,
}

impl TaskOutcome {
    /// An outcome for a task that ended without running to an exit of its
    /// own (refused, cancelled, given up): nothing ran, so nothing was
    /// used, and `message` says why.
    pub fn ended(status: TaskStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            fuel_used: 0,
            duration_ms: 0,
            peak_memory_bytes: 0,
            message: Some(message.into()),
            files: Vec::new(),
        }
    }

    /// An outcome for a task refused before it ran.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::ended(TaskStatus::Rejected, message)
    }

    /// Adds `note` to the message, after what it says already.
    pub fn note(&mut self, note: impl AsRef<str>) {
        let m = self.message.get_or_insert_with(String::new);
        if !m.is_empty() {
            m.push_str("; ");
        }
        m.push_str(note.as_ref());
    }

    /// The exit code the CLI should end with for this outcome.
    pub fn cli_exit_code(&self) -> i32 {
        self.status.cli_exit_code(self.exit_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(TaskStatus::Succeeded.cli_exit_code(Some(0)), 0);
        assert_eq!(TaskStatus::Failed.cli_exit_code(Some(3)), 3);
        assert_eq!(TaskStatus::TimedOut.cli_exit_code(None), 124);
        assert_eq!(TaskStatus::FuelExhausted.cli_exit_code(None), 125);
        assert_eq!(TaskStatus::MemoryExceeded.cli_exit_code(None), 126);
        assert_eq!(TaskStatus::Trapped.cli_exit_code(None), 127);
        assert_eq!(TaskStatus::Rejected.cli_exit_code(None), 2);
        assert_eq!(TaskStatus::Cancelled.cli_exit_code(None), 1);
    }

    #[test]
    fn status_names_match_serde() {
        for s in TaskStatus::ALL {
            let mut cbor = Vec::new();
            ciborium::into_writer(&s, &mut cbor).unwrap();
            let v: ciborium::Value = ciborium::from_reader(&cbor[..]).unwrap();
            assert_eq!(v.as_text(), Some(s.as_str()));
        }
    }
}
