//! The REST API's JSON shapes, with their OpenAPI schemas. They are the
//! API's contract, kept apart from the wire types (CBOR over QUIC) so
//! either can change without the other.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_proto::{AttemptRecord, OutputFile, Priority, TaskInfo, TaskKind, TaskOutcome};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

mod batch;
mod cluster;
mod jobs;
mod listing;
mod schedules;

pub(crate) use batch::{CreatedMany, NewTasks};
pub(crate) use cluster::{
    GroupHealth, Health, KeyHealth, MemberJson, Stats, TokenView, WorkerView,
};
pub(crate) use jobs::{
    EachItemJson, JobCreated, JobJson, JobListQuery, JobPage, JobTouched, NewJob, NewStep,
    StepCreated, StepJson, StepTaskJson,
};
pub(crate) use listing::{Filter, ListQuery, StateFilter};
pub(crate) use schedules::{NewSchedule, ScheduleJson, ScheduleRunJson};

/// A task to queue: exactly one of `module` (a wasm task) or `command` (a
/// native one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTask {
    /// SHA-256 (hex) of an uploaded module (`POST /api/v1/modules`).
    pub module: Option<String>,
    /// An allow-listed program name, run in the native sandbox.
    pub command: Option<String>,
    /// Arguments after the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables; nothing else is inherited.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secrets, given to the task as environment variables: never shown
    /// (a task's view lists their names only), encrypted at rest and
    /// dropped when the task ends.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: BTreeMap<String, fabric_proto::SecretValue>,
    /// Standard input, base64.
    pub input_b64: Option<String>,
    /// Standard input as an uploaded blob (`POST /api/v1/blobs`), for big
    /// inputs.
    pub input_blob: Option<BlobRefJson>,
    /// Files placed in a native task's work dir (uploaded as blobs).
    #[serde(default)]
    pub files: Vec<StagedFileJson>,
    /// Globs of files a native task's run brings back.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Resource limits; each one left out takes the default.
    pub limits: Option<LimitsJson>,
    /// `high`, `normal` (default) or `low`.
    pub priority: Option<PriorityJson>,
    /// How many times a failed attempt is retried (default 0).
    pub retries: Option<u32>,
    /// A correlation id that follows the task into every log line and its
    /// record (letters, digits, `. _ : -`; default: the task's id).
    pub trace: Option<String>,
    /// Labels the worker must carry, every one (at most 16).
    #[serde(default)]
    pub require: Vec<String>,
    /// Ids of tasks that must succeed before this one is queued (at most
    /// 32); if one ends any other way, this one ends `skipped`.
    #[serde(default)]
    pub after: Vec<String>,
    /// A task whose stdout becomes this one's stdin once it succeeded
    /// (implies `after`; not with `input_b64` or `input_blob`).
    pub input_from: Option<String>,
    /// Native tasks whose output files are staged into this one's dir
    /// once they succeeded (implies `after`).
    #[serde(default)]
    pub files_from: Vec<String>,
    /// Not to start before this time (RFC 3339, e.g.
    /// `2026-12-07T03:00:00+01:00`; at most a year ahead): the task is
    /// `scheduled` until then.
    pub not_before: Option<String>,
}

/// An uploaded blob.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BlobRefJson {
    /// SHA-256 of its bytes (hex).
    pub sha256: String,
    /// Its length in bytes.
    pub len: u64,
}

/// A file staged into a native task's work dir.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StagedFileJson {
    /// Where, relative to the work dir.
    pub path: String,
    /// SHA-256 (hex) of an uploaded blob.
    pub sha256: String,
    /// The blob's length in bytes.
    pub len: u64,
    /// Made executable.
    #[serde(default)]
    pub executable: bool,
}

/// Resource limits.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsJson {
    /// Wasm fuel (instructions, roughly).
    pub fuel: Option<u64>,
    /// Memory, bytes.
    pub memory_bytes: Option<u64>,
    /// Wall-clock timeout, ms.
    pub timeout_ms: Option<u64>,
    /// A native task's disk (/work and /tmp together), bytes.
    pub disk_bytes: Option<u64>,
}

/// A priority.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PriorityJson {
    /// Before everything else.
    High,
    /// The default.
    Normal,
    /// When nothing else waits.
    Low,
}

impl From<PriorityJson> for Priority {
    fn from(p: PriorityJson) -> Self {
        match p {
            PriorityJson::High => Self::High,
            PriorityJson::Normal => Self::Normal,
            PriorityJson::Low => Self::Low,
        }
    }
}

impl From<Priority> for PriorityJson {
    fn from(p: Priority) -> Self {
        match p {
            Priority::High => Self::High,
            Priority::Normal => Self::Normal,
            Priority::Low => Self::Low,
        }
    }
}

/// A task was queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Created {
    /// Its id.
    pub id: String,
    /// Why it may wait long (no worker offers what it needs), if it may.
    pub warning: Option<String>,
}

/// A module or blob was stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Uploaded {
    /// SHA-256 of its bytes (hex): how tasks name it.
    pub sha256: String,
    /// Its length in bytes.
    pub len: u64,
}

/// A task's state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskView {
    /// Its id.
    pub id: String,
    /// `queued`, `running`, `done` or `cancelled`.
    pub state: String,
    /// The final status once finished: `succeeded`, `failed`,
    /// `fuel_exhausted`, `memory_exceeded`, `timed_out`, `trapped`,
    /// `cancelled`, `rejected`.
    pub status: Option<String>,
    /// `wasm` or `command`.
    pub kind: String,
    /// The module's SHA-256, for a wasm task.
    pub module: Option<String>,
    /// The program, for a native task.
    pub command: Option<String>,
    /// Its priority.
    pub priority: PriorityJson,
    /// Attempts started.
    pub attempt: u32,
    /// Its retry budget.
    pub retries: u32,
    /// The worker's key (hex) running it, or that ran it.
    pub worker: Option<String>,
    /// That worker's name, when known.
    pub worker_name: Option<String>,
    /// Submitted at, ms since the epoch.
    pub submitted_ms: u64,
    /// Last change, ms since the epoch.
    pub updated_ms: u64,
    /// In the dead-letter set.
    pub dead_letter: bool,
    /// Why a queued task waits, in people's words.
    pub waiting: Option<String>,
    /// Its latest attempts, oldest first.
    pub attempts: Vec<AttemptView>,
    /// Its correlation id.
    pub trace: Option<String>,
    /// The limits it runs under.
    pub limits: LimitsView,
    /// Labels its worker must carry.
    pub require: Vec<String>,
    /// Ids of the tasks it runs after.
    pub after: Vec<String>,
    /// The names of its secrets (never their values).
    pub secrets: Vec<String>,
}

/// A task's limits, as admitted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LimitsView {
    /// Wasm fuel (instructions, roughly).
    pub fuel: u64,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// Wall-clock timeout, ms.
    pub timeout_ms: u64,
    /// Bytes kept of each of stdout and stderr.
    pub output_bytes: u64,
    /// A native task's disk (/work and /tmp together), bytes.
    pub disk_bytes: u64,
}

/// One attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptView {
    /// Its number.
    pub attempt: u32,
    /// The worker's key (hex).
    pub worker: String,
    /// Started, ms since the epoch.
    pub started_ms: u64,
    /// Ended, ms since the epoch.
    pub ended_ms: Option<u64>,
    /// How it ended.
    pub outcome: Option<String>,
    /// The worker's name, as it registered.
    pub worker_name: Option<String>,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            attempt: a.attempt,
            worker: a.worker.to_string(),
            started_ms: a.started_ms,
            ended_ms: a.ended_ms,
            outcome: a.outcome.clone(),
            worker_name: a.worker_name.clone(),
        }
    }
}

impl From<&TaskInfo> for TaskView {
    fn from(t: &TaskInfo) -> Self {
        let (kind, module, command) = match &t.kind {
            TaskKind::Wasm { module } => ("wasm", Some(module.to_hex()), None),
            TaskKind::Command { program, .. } => ("command", None, Some(program.clone())),
        };
        Self {
            id: t.id.to_string(),
            state: t.state.as_str().to_owned(),
            status: t.status.map(|s| s.as_str().to_owned()),
            kind: kind.to_owned(),
            module,
            command,
            priority: t.priority.into(),
            attempt: t.attempt,
            retries: t.retries,
            worker: t.worker.map(|w| w.to_string()),
            worker_name: t.worker_name.clone(),
            submitted_ms: t.submitted_ms,
            updated_ms: t.updated_ms,
            dead_letter: t.dead_letter,
            waiting: t.waiting.clone(),
            attempts: t.history.iter().map(AttemptView::from).collect(),
            trace: t.trace.clone(),
            limits: LimitsView {
                fuel: t.limits.fuel,
                memory_bytes: t.limits.memory_bytes,
                timeout_ms: t.limits.timeout_ms,
                output_bytes: t.limits.output_bytes,
                disk_bytes: t.limits.disk_bytes,
            },
            require: t.require.clone(),
            after: t.after.iter().map(ToString::to_string).collect(),
            secrets: t.secrets.clone(),
        }
    }
}

/// A page of tasks, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TaskPage {
    /// The tasks.
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next (older) page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A finished task's result: the same keys as the CLI's `--json`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OutputView {
    /// The task.
    pub id: String,
    /// Its final status.
    pub status: String,
    /// Its own exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Standard output, when it is UTF-8.
    pub stdout: Option<String>,
    /// Standard output, base64, when it is not.
    pub stdout_b64: Option<String>,
    /// Standard error, when it is UTF-8.
    pub stderr: Option<String>,
    /// Standard error, base64, when it is not.
    pub stderr_b64: Option<String>,
    /// Standard output was cut at the output cap.
    pub stdout_truncated: bool,
    /// Standard error was cut at the output cap.
    pub stderr_truncated: bool,
    /// Wasm fuel used.
    pub fuel_used: u64,
    /// Wall time of the run, ms.
    pub duration_ms: u64,
    /// Largest memory reached, bytes.
    pub peak_memory_bytes: u64,
    /// Why it ended, when that was not a plain exit.
    pub message: Option<String>,
    /// Its attempt.
    pub attempt: u32,
    /// How many output files it brought back (`GET .../files`).
    pub files: usize,
}

/// Text when it is UTF-8, base64 otherwise.
fn text_or_b64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Some(s.to_owned()), None),
        Err(_) => (None, Some(B64.encode(bytes))),
    }
}

impl OutputView {
    pub(crate) fn new(info: &TaskInfo, o: &TaskOutcome) -> Self {
        let (stdout, stdout_b64) = text_or_b64(&o.stdout);
        let (stderr, stderr_b64) = text_or_b64(&o.stderr);
        Self {
            id: info.id.to_string(),
            status: o.status.as_str().to_owned(),
            exit_code: o.exit_code,
            stdout,
            stdout_b64,
            stderr,
            stderr_b64,
            stdout_truncated: o.stdout_truncated,
            stderr_truncated: o.stderr_truncated,
            fuel_used: o.fuel_used,
            duration_ms: o.duration_ms,
            peak_memory_bytes: o.peak_memory_bytes,
            message: o.message.clone(),
            attempt: info.attempt,
            files: o.files.len(),
        }
    }
}

/// A file a native task brought back.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OutputFileView {
    /// Its path relative to the work dir.
    pub path: String,
    /// Its length in bytes.
    pub len: u64,
    /// Whether it was executable.
    pub executable: bool,
    /// Its bytes, base64.
    pub content_b64: String,
}

impl From<&OutputFile> for OutputFileView {
    fn from(f: &OutputFile) -> Self {
        Self {
            path: f.path.clone(),
            len: f.bytes.len() as u64,
            executable: f.executable,
            content_b64: B64.encode(&f.bytes),
        }
    }
}
