//! The summary's stored form: a CBOR array with numbers for the states
//! and priorities, so a restart that reads a million of them matches no
//! field names (a map of named fields cost a restart about a sixth of its
//! time in name matching and UTF-8 checks).
//!
//! Summaries written before this form are CBOR maps (a [`QueuedRecord`]
//! as serde writes it); [`QueuedRecord::from_summary`] reads both, told
//! apart by the first byte (an array's major type is 4, a map's 5).

use serde::{Deserialize, Serialize};

use super::{QueuedRecord, QueuedSpec};
use crate::{BlobRef, CodecError, Limits, Priority, Sha256, TaskId, TaskKind, TaskState};

/// A stored blob by digest and length, as a pair.
type Blob = (Sha256, u64);

/// Fuel, memory, timeout, output, disk.
type LimitsRow = (u64, u64, u64, u64, u64);

/// The array: written from borrows (a submit writes one per task), read
/// back owned. The type parameters are what differs between the two: the
/// id, a module, a native kind, the labels and the job trace.
#[derive(Serialize, Deserialize)]
struct Row<Id, Module, Kind, Labels, Job>(
    Id,
    u64,
    u8,
    u32,
    u64,
    u64,
    u8,
    Option<Blob>,
    // The module of a wasm task; a native task's kind is in the next field.
    Option<Module>,
    Option<Kind>,
    Option<Blob>,
    LimitsRow,
    u8,
    Labels,
    Option<Job>,
    Option<u64>,
);

/// What a submit writes.
type RowRef<'a> = Row<&'a TaskId, &'a Sha256, &'a TaskKind, &'a [String], &'a str>;
/// What a restart reads.
type RowOwned = Row<TaskId, Sha256, TaskKind, Vec<String>, String>;

/// Every state, by its number in a summary (append only).
const STATES: [TaskState; 6] = [
    TaskState::Queued,
    TaskState::Running,
    TaskState::Done,
    TaskState::Cancelled,
    TaskState::Waiting,
    TaskState::Scheduled,
];

/// Every priority, by its number in a summary (append only).
const PRIORITIES: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

fn number<T: PartialEq>(all: &[T], of: &T) -> u8 {
    let at = all
        .iter()
        .position(|x| x == of)
        .expect("every value is listed");
    u8::try_from(at).expect("fewer than 256 values")
}

fn named<T: Copy>(all: &[T], n: u8, what: &str) -> Result<T, CodecError> {
    all.get(usize::from(n))
        .copied()
        .ok_or_else(|| CodecError::Decode(format!("no {what} is numbered {n}")))
}

fn blob(b: Option<BlobRef>) -> Option<Blob> {
    b.map(|b| (b.sha, b.len))
}

fn blob_ref(b: Option<Blob>) -> Option<BlobRef> {
    b.map(|(sha, len)| BlobRef { sha, len })
}

impl QueuedRecord {
    /// The summary the store keeps beside an unfinished task: what
    /// [`QueuedRecord::of`] takes from `rec`, in the array form.
    pub fn summary_of(rec: &crate::TaskRecord) -> Result<Vec<u8>, CodecError> {
        let spec = &rec.spec;
        let l = &spec.limits;
        let (module, kind) = match &spec.kind {
            TaskKind::Wasm { module } => (Some(module), None),
            native @ TaskKind::Command { .. } => (None, Some(native)),
        };
        let job = spec.trace.as_deref().filter(|t| t.starts_with("job-"));
        crate::to_cbor::<RowRef<'_>>(&Row(
            &rec.id,
            rec.seq,
            number(&STATES, &rec.state),
            rec.attempt,
            rec.not_before_ms,
            rec.submitted_ms,
            rec.aged,
            blob(rec.args_blob),
            module,
            kind,
            blob(spec.input_blob),
            (
                l.fuel,
                l.memory_bytes,
                l.timeout_ms,
                l.output_bytes,
                l.disk_bytes,
            ),
            number(&PRIORITIES, &spec.priority),
            &spec.require,
            job,
            spec.not_before_ms,
        ))
    }

    /// Reads a summary in either form (see the module's doc).
    pub fn from_summary(bytes: &[u8]) -> Result<Self, CodecError> {
        match bytes.first() {
            Some(0x80..=0x9f) => Self::from_row(crate::from_own_cbor::<RowOwned>(bytes)?),
            _ => crate::from_own_cbor(bytes),
        }
    }

    fn from_row(r: RowOwned) -> Result<Self, CodecError> {
        let kind = match (r.8, r.9) {
            (Some(module), None) => TaskKind::Wasm { module },
            (None, Some(native @ TaskKind::Command { .. })) => native,
            _ => {
                return Err(CodecError::Decode(
                    "a summary names neither one module nor one native command".into(),
                ));
            }
        };
        let (fuel, memory_bytes, timeout_ms, output_bytes, disk_bytes) = r.11;
        Ok(Self {
            id: r.0,
            seq: r.1,
            state: named(&STATES, r.2, "state")?,
            attempt: r.3,
            not_before_ms: r.4,
            submitted_ms: r.5,
            aged: r.6,
            args_blob: blob_ref(r.7),
            spec: QueuedSpec {
                kind,
                input_blob: blob_ref(r.10),
                limits: Limits {
                    fuel,
                    memory_bytes,
                    timeout_ms,
                    output_bytes,
                    disk_bytes,
                },
                priority: named(&PRIORITIES, r.12, "priority")?,
                require: r.13,
                job: r.14,
                not_before_ms: r.15,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StagedFile, TaskRecord, TaskSpec};

    fn records() -> Vec<TaskRecord> {
        let mut wasm = TaskSpec::wasm(Sha256::of(b"module"));
        wasm.priority = Priority::Low;
        wasm.trace = Some("job-7".into());
        wasm.not_before_ms = Some(9);
        wasm.require = vec!["gpu".into()];
        wasm.input_blob = Some(BlobRef::of(b"input"));
        wasm.limits.memory_bytes = 12345;
        let mut a = TaskRecord::queued(TaskId::new(), wasm, 42, 1_000);
        a.state = TaskState::Scheduled;
        a.attempt = 3;
        a.not_before_ms = 77;
        a.aged = 1;
        a.args_blob = Some(BlobRef::of(b"args"));
        let mut native = TaskSpec::wasm(Sha256::of(b"unused"));
        native.kind = TaskKind::Command {
            program: "sh".into(),
            files: vec![StagedFile {
                path: "in.txt".into(),
                blob: BlobRef::of(b"file"),
                executable: false,
            }],
            outputs: vec!["out.txt".into()],
        };
        native.trace = Some("not-a-job".into());
        let b = TaskRecord::queued(TaskId::new(), native, 43, 2_000);
        vec![a, b]
    }

    /// Both forms read back as what `QueuedRecord::of` takes.
    #[test]
    fn a_summary_reads_back_in_the_array_form_and_the_older_map_form() {
        for rec in records() {
            let expected = QueuedRecord::of(&rec);
            let array = QueuedRecord::summary_of(&rec).unwrap();
            assert!(matches!(array[0], 0x80..=0x9f), "an array: {:#x}", array[0]);
            assert_eq!(QueuedRecord::from_summary(&array).unwrap(), expected);
            let map = crate::to_cbor(&expected).unwrap();
            assert_eq!(QueuedRecord::from_summary(&map).unwrap(), expected);
            assert!(array.len() < map.len(), "{} < {}", array.len(), map.len());
        }
    }

    /// Numbers out of range, and a kind that is neither, are errors (the
    /// store then reads the task's record), never a wrong task.
    #[test]
    fn a_summary_with_an_unknown_number_does_not_read() {
        let rec = &records()[0];
        let good = QueuedRecord::summary_of(rec).unwrap();
        let row: ciborium::Value = crate::from_cbor(&good).unwrap();
        let ciborium::Value::Array(items) = row else {
            panic!("an array")
        };
        for (at, value) in [
            (2, ciborium::Value::from(6)),
            (12, ciborium::Value::from(3)),
            (8, ciborium::Value::Null),
        ] {
            let mut bad = items.clone();
            bad[at] = value;
            let bytes = crate::to_cbor(&ciborium::Value::Array(bad)).unwrap();
            let err = QueuedRecord::from_summary(&bytes).unwrap_err();
            assert!(matches!(err, CodecError::Decode(_)), "field {at}: {err}");
        }
    }
}
