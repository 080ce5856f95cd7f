//! Worker streams: the control stream's messages, and an assignment's
//! run, reports and ack.

use serde::{Deserialize, Serialize};

use crate::{BlobRef, GuestEvent, Manifest, Signed, TaskId, TaskOutcome};

/// Worker → dispatcher, on the control stream after registration.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMsg {
    /// I am alive; this many tasks are running here.
    Heartbeat {
        /// Running tasks.
        running: u32,
    },
    /// I am draining: send me nothing new.
    Draining,
}

/// Dispatcher → worker, first frame of a stream the dispatcher opens.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assign {
    /// Run this attempt.
    Run {
        /// The signed manifest.
        manifest: Signed<Manifest>,
        /// The task's stdin, when inline (empty when `input_blob` is set).
        #[serde(with = "serde_bytes")]
        input: Vec<u8>,
        /// The task's stdin as a blob to fetch by digest (with
        /// [`Request::GetBlobRange`]); the manifest's `input_digest` binds it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_blob: Option<BlobRef>,
    },
    /// Stop this attempt if it is running.
    Cancel {
        /// The task.
        id: TaskId,
        /// The attempt.
        attempt: u32,
    },
}

/// Worker → dispatcher, on an assignment stream.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Progress or a log line.
    Event(GuestEvent),
    /// The attempt finished.
    Done(Box<TaskOutcome>),
    /// The worker would not run it.
    Refused {
        /// Why.
        reason: String,
    },
}

/// Dispatcher → worker: the result was recorded (or dropped as stale).
#[derive(Debug, Serialize, Deserialize)]
pub struct Ack {
    /// Whether this result became the task's recorded result.
    pub recorded: bool,
}
