//! What a restarting dispatcher reads of each unfinished task: a
//! projection of [`TaskRecord`]'s stored form (the same field names and
//! defaults; the decoder skips every other field), so a million queued
//! tasks are read without building or holding their whole records.

use serde::Deserialize;

use crate::{BlobRef, Priority, TaskId, TaskKind, TaskState};

/// The fields of a stored [`crate::TaskRecord`] that a queued task needs
/// while it waits.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct QueuedRecord {
    /// The task.
    pub id: TaskId,
    /// Submission order.
    pub seq: u64,
    /// Its state.
    pub state: TaskState,
    /// Attempts started so far.
    pub attempt: u32,
    /// When it may be placed again (0: now).
    pub not_before_ms: u64,
    /// When it was submitted.
    pub submitted_ms: u64,
    /// Priority steps it climbed by waiting.
    #[serde(default)]
    pub aged: u8,
    /// Where large args and env are kept.
    #[serde(default)]
    pub args_blob: Option<BlobRef>,
    /// The part of the spec it keeps.
    pub spec: QueuedSpec,
}

/// The part of a [`crate::TaskSpec`] in a [`QueuedRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct QueuedSpec {
    /// What it runs (the module, or the program and staged files).
    pub kind: TaskKind,
    /// Its stdin as a stored blob.
    #[serde(default)]
    pub input_blob: Option<BlobRef>,
    /// Its priority.
    pub priority: Priority,
    /// Its trace.
    #[serde(default)]
    pub trace: Option<String>,
    /// When it was asked to start.
    #[serde(default)]
    pub not_before_ms: Option<u64>,
}

impl QueuedRecord {
    /// Whether the task waits in the queue (queued or scheduled), the
    /// only states a restart holds this way.
    pub fn waits_in_queue(&self) -> bool {
        matches!(self.state, TaskState::Queued | TaskState::Scheduled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sha256, TaskRecord, TaskSpec, from_cbor, to_cbor};

    /// Decoded from a whole record's stored bytes, it carries the
    /// record's own values (a renamed or re-shaped field fails here).
    #[test]
    fn a_queued_record_is_read_from_a_stored_task_record() {
        let mut spec = TaskSpec::wasm(Sha256::of(b"module"));
        spec.priority = Priority::Low;
        spec.trace = Some("job-7".into());
        spec.not_before_ms = Some(9);
        spec.args = vec!["a".into(); 3];
        spec.input_blob = Some(BlobRef {
            sha: Sha256::of(b"input"),
            len: 5,
        });
        let mut rec = TaskRecord::queued(TaskId::new(), spec.clone(), 42, 1_000);
        rec.state = TaskState::Scheduled;
        rec.attempt = 3;
        rec.not_before_ms = 77;
        rec.aged = 1;
        rec.args_blob = Some(BlobRef {
            sha: Sha256::of(b"args"),
            len: 9,
        });
        let q: QueuedRecord = from_cbor(&to_cbor(&rec).unwrap()).unwrap();
        assert_eq!(
            q,
            QueuedRecord {
                id: rec.id,
                seq: 42,
                state: TaskState::Scheduled,
                attempt: 3,
                not_before_ms: 77,
                submitted_ms: 1_000,
                aged: 1,
                args_blob: rec.args_blob,
                spec: QueuedSpec {
                    kind: spec.kind,
                    input_blob: spec.input_blob,
                    priority: Priority::Low,
                    trace: Some("job-7".into()),
                    not_before_ms: Some(9),
                },
            }
        );
        assert!(q.waits_in_queue());
    }
}
