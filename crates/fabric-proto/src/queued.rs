//! What a restarting dispatcher reads of each unfinished task: a
//! projection of [`TaskRecord`]'s stored form (the same field names and
//! defaults; the decoder skips every other field), so a million queued
//! tasks are read without building or holding their whole records.
//!
//! The store also keeps one sealed beside each unfinished task, as the
//! value of its queue-index entry ([`QueuedRecord::summary_of`], in a
//! compact form of its own: `queued/summary.rs`): a restart then reads the
//! index alone, not a million records.

use serde::{Deserialize, Serialize};

use crate::{BlobRef, Limits, Priority, TaskId, TaskKind, TaskRecord, TaskState};

mod summary;

/// The fields of a stored [`crate::TaskRecord`] that a queued task needs
/// while it waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedSpec {
    /// What it runs (the module, or the program and staged files).
    pub kind: TaskKind,
    /// Its stdin as a stored blob.
    #[serde(default)]
    pub input_blob: Option<BlobRef>,
    /// Its limits (placement reads the memory).
    pub limits: Limits,
    /// Its priority.
    pub priority: Priority,
    /// Labels a worker must carry.
    #[serde(default)]
    pub require: Vec<String>,
    /// Its trace when it belongs to a job (`job-...`); other traces are
    /// skipped without being copied (a restart reads a million of them).
    #[serde(default, rename = "trace", deserialize_with = "job_trace")]
    pub job: Option<String>,
    /// When it was asked to start.
    #[serde(default)]
    pub not_before_ms: Option<u64>,
}

/// A trace kept only when it names a job.
fn job_trace<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct JobTrace;
    impl<'de> serde::de::Visitor<'de> for JobTrace {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a trace or nothing")
        }

        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
            Ok(s.starts_with("job-").then(|| s.to_owned()))
        }
    }
    d.deserialize_option(JobTrace)
}

impl QueuedRecord {
    /// What `rec` holds of these fields: decoded from its encoding, it is
    /// what decoding `rec`'s own encoding as a `QueuedRecord` gives.
    pub fn of(rec: &TaskRecord) -> Self {
        Self {
            id: rec.id,
            seq: rec.seq,
            state: rec.state,
            attempt: rec.attempt,
            not_before_ms: rec.not_before_ms,
            submitted_ms: rec.submitted_ms,
            aged: rec.aged,
            args_blob: rec.args_blob,
            spec: QueuedSpec {
                kind: rec.spec.kind.clone(),
                input_blob: rec.spec.input_blob,
                limits: rec.spec.limits,
                priority: rec.spec.priority,
                require: rec.spec.require.clone(),
                job: rec
                    .spec
                    .trace
                    .as_ref()
                    .filter(|t| t.starts_with("job-"))
                    .cloned(),
                not_before_ms: rec.spec.not_before_ms,
            },
        }
    }

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
        let own: QueuedRecord = crate::from_own_cbor(&to_cbor(&rec).unwrap()).unwrap();
        assert_eq!(q, own);
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
                    limits: spec.limits,
                    priority: Priority::Low,
                    require: Vec::new(),
                    job: Some("job-7".into()),
                    not_before_ms: Some(9),
                },
            }
        );
        assert!(q.waits_in_queue());
        // The summary kept beside it reads back the same.
        let summary: QueuedRecord =
            crate::from_own_cbor(&to_cbor(&QueuedRecord::of(&rec)).unwrap()).unwrap();
        assert_eq!(summary, q);
        // A trace that names no job is not kept; none at all is none.
        for trace in [Some("abc".to_owned()), None] {
            rec.spec.trace = trace;
            let q: QueuedRecord = from_cbor(&to_cbor(&rec).unwrap()).unwrap();
            assert_eq!(q.spec.job, None);
            let q: QueuedRecord = crate::from_own_cbor(&to_cbor(&rec).unwrap()).unwrap();
            assert_eq!(q.spec.job, None);
            let summary: QueuedRecord =
                crate::from_own_cbor(&to_cbor(&QueuedRecord::of(&rec)).unwrap()).unwrap();
            assert_eq!(summary, q);
        }
    }
}
