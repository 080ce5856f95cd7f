//! What a running guest reports besides its output: progress and log lines.

use serde::{Deserialize, Serialize};

/// Severity of a guest log line, mirroring `tracing` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something looks wrong.
    Warn,
    /// Normal progress information.
    Info,
    /// Detail for whoever debugs the task.
    Debug,
    /// Very fine detail.
    Trace,
}

impl LogLevel {
    /// Maps the guest ABI's integer level (0 = error ... 4 = trace); values
    /// out of range clamp to the nearest level rather than fail.
    pub fn from_abi(level: i32) -> Self {
        match level {
            i32::MIN..=0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            3 => Self::Debug,
            _ => Self::Trace,
        }
    }

    /// Lower-case name, e.g. `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }
}

/// An event a guest emits while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestEvent {
    /// `done` of `total` units of work are complete.
    Progress {
        /// Units complete.
        done: u64,
        /// Units in all (0 when unknown).
        total: u64,
    },
    /// A structured log line.
    Log {
        /// Severity.
        level: LogLevel,
        /// The text, lossily decoded as UTF-8 and cut to a bounded length.
        message: String,
    },
}
