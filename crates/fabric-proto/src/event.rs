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
    /// Output a native command wrote, as it came (a bounded chunk).
    Output {
        /// Which stream.
        stream: OutputStream,
        /// The bytes.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// A native command's output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Guest events waiting for a reader that may be slower than the guest:
/// the latest progress only, and at most `max_logs` log lines in order.
/// Lines past that are dropped and counted, and the reader hears how many
/// in one warning. A plain structure; each side wraps it in its own lock
/// and wake-up.
#[derive(Clone, Debug)]
pub struct EventQueue {
    progress: Option<GuestEvent>,
    logs: std::collections::VecDeque<GuestEvent>,
    max_logs: usize,
    dropped: u64,
}

impl EventQueue {
    /// An empty queue keeping at most `max_logs` log lines.
    pub fn new(max_logs: usize) -> Self {
        Self {
            progress: None,
            logs: std::collections::VecDeque::new(),
            max_logs,
            dropped: 0,
        }
    }

    /// Adds an event: progress replaces the progress waiting, a log line
    /// queues (or is dropped and counted when the queue is full).
    pub fn push(&mut self, event: GuestEvent) {
        match event {
            GuestEvent::Progress { .. } => self.progress = Some(event),
            GuestEvent::Log { .. } | GuestEvent::Output { .. }
                if self.logs.len() < self.max_logs =>
            {
                self.logs.push_back(event);
            }
            GuestEvent::Log { .. } | GuestEvent::Output { .. } => self.dropped += 1,
        }
    }

    /// The next event for the reader: log lines in order, then a warning
    /// about dropped ones, then the latest progress.
    pub fn pop(&mut self) -> Option<GuestEvent> {
        if let Some(log) = self.logs.pop_front() {
            return Some(log);
        }
        if self.dropped > 0 {
            let n = std::mem::take(&mut self.dropped);
            return Some(GuestEvent::Log {
                level: LogLevel::Warn,
                message: format!("{n} guest log lines dropped: the reader fell behind"),
            });
        }
        self.progress.take()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.dropped == 0 && self.progress.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(m: &str) -> GuestEvent {
        GuestEvent::Log {
            level: LogLevel::Info,
            message: m.into(),
        }
    }

    #[test]
    fn a_queue_keeps_the_latest_progress_and_a_bounded_number_of_logs() {
        let mut q = EventQueue::new(2);
        assert!(q.is_empty());
        for i in 0..1_000 {
            q.push(GuestEvent::Progress { done: i, total: 0 });
            q.push(log("x"));
        }
        assert_eq!(q.pop(), Some(log("x")));
        assert_eq!(q.pop(), Some(log("x")));
        assert!(matches!(
            q.pop(),
            Some(GuestEvent::Log { level: LogLevel::Warn, message }) if message.starts_with("998 ")
        ));
        assert_eq!(
            q.pop(),
            Some(GuestEvent::Progress {
                done: 999,
                total: 0
            })
        );
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }
}
