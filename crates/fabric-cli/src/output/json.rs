//! The `--json` contract, as types: one view per kind of object printed.
//!
//! Field names are the keys scripts read, so renaming one breaks users.
//! Captured output is text when it is UTF-8; otherwise the text key is
//! `null` and `<key>_b64` carries the bytes in base64 (that key appears only
//! then). A task carries every outcome key in every state, `null` until the
//! task has an outcome.

use std::collections::BTreeMap;

use base64::Engine as _;
use fabric_proto::wire::WorkerSummary;
use fabric_proto::{LogLevel, Sha256, TaskId, TaskInfo, TaskKind, TaskOutcome, WorkerKey};
use serde::Serialize;

/// One guest log line.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogView {
    pub level: &'static str,
    pub message: String,
}

impl LogView {
    pub(crate) fn new(level: LogLevel, message: String) -> Self {
        Self {
            level: level.as_str(),
            message,
        }
    }
}

/// The outcome's keys, shared by [`OutcomeView`] and [`TaskView`]; all
/// `None` (printed `null`) when there is no outcome yet.
#[derive(Debug, Default, Serialize)]
struct OutcomeFields<'a> {
    exit_code: Option<i32>,
    stdout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout_b64: Option<String>,
    stderr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr_b64: Option<String>,
    stdout_truncated: Option<bool>,
    stderr_truncated: Option<bool>,
    fuel_used: Option<u64>,
    duration_ms: Option<u64>,
    peak_memory_bytes: Option<u64>,
    message: Option<&'a str>,
    logs: Option<&'a [LogView]>,
}

impl<'a> OutcomeFields<'a> {
    fn new(outcome: Option<&'a TaskOutcome>, logs: &'a [LogView]) -> Self {
        let Some(o) = outcome else {
            return Self::default();
        };
        let (stdout, stdout_b64) = text_or_b64(&o.stdout);
        let (stderr, stderr_b64) = text_or_b64(&o.stderr);
        Self {
            exit_code: o.exit_code,
            stdout,
            stdout_b64,
            stderr,
            stderr_b64,
            stdout_truncated: Some(o.stdout_truncated),
            stderr_truncated: Some(o.stderr_truncated),
            fuel_used: Some(o.fuel_used),
            duration_ms: Some(o.duration_ms),
            peak_memory_bytes: Some(o.peak_memory_bytes),
            message: o.message.as_deref(),
            logs: Some(logs),
        }
    }
}

/// The bytes as text, or `(None, base64)` when they are not UTF-8.
fn text_or_b64(bytes: &[u8]) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        ),
    }
}

/// A finished run: `fabric exec --json`.
#[derive(Debug, Serialize)]
pub(crate) struct OutcomeView<'a> {
    status: &'static str,
    #[serde(flatten)]
    fields: OutcomeFields<'a>,
    /// The module's SHA-256, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<String>,
}

impl<'a> OutcomeView<'a> {
    pub(crate) fn new(o: &'a TaskOutcome, module: Option<Sha256>, logs: &'a [LogView]) -> Self {
        Self {
            status: o.status.as_str(),
            fields: OutcomeFields::new(Some(o), logs),
            module: module.map(|m| m.to_hex()),
        }
    }
}

/// A cluster task: `status`, `cancel`, `tasks`, `result` and `submit --wait`.
#[derive(Debug, Serialize)]
pub(crate) struct TaskView<'a> {
    id: String,
    /// The final status once there is one, else the state.
    status: &'static str,
    state: &'static str,
    priority: String,
    attempt: u32,
    retries: u32,
    worker: Option<WorkerKey>,
    submitted_ms: u64,
    updated_ms: u64,
    dead_letter: bool,
    /// Why a queued task is not running yet.
    waiting: Option<&'a str>,
    /// The name its worker registered with, when known.
    worker_name: Option<&'a str>,
    /// Its correlation id.
    trace: Option<&'a str>,
    /// Its latest attempts, oldest first.
    attempts: &'a [fabric_proto::AttemptRecord],
    /// The module's SHA-256, for a wasm task.
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<String>,
    /// The limits it runs under.
    limits: fabric_proto::Limits,
    /// Labels its worker must carry.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    require: &'a [String],
    /// Tasks it runs after.
    #[serde(skip_serializing_if = "<[TaskId]>::is_empty")]
    after: &'a [TaskId],
    /// The names of its secrets (never their values).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    secrets: &'a [String],
    #[serde(flatten)]
    outcome: OutcomeFields<'a>,
}

impl<'a> TaskView<'a> {
    /// The task with its recorded outcome, if any.
    pub(crate) fn new(info: &'a TaskInfo) -> Self {
        Self::with_outcome(info, info.outcome.as_ref(), &[])
    }

    /// The task with `outcome` (which may be made up from its status) and
    /// the log lines seen while waiting.
    pub(crate) fn with_outcome(
        info: &'a TaskInfo,
        outcome: Option<&'a TaskOutcome>,
        logs: &'a [LogView],
    ) -> Self {
        Self {
            id: info.id.to_string(),
            status: info.status_word(),
            state: info.state.as_str(),
            priority: info.priority.to_string(),
            attempt: info.attempt,
            retries: info.retries,
            worker: info.worker,
            submitted_ms: info.submitted_ms,
            updated_ms: info.updated_ms,
            dead_letter: info.dead_letter,
            waiting: info.waiting.as_deref(),
            worker_name: info.worker_name.as_deref(),
            trace: info.trace.as_deref(),
            attempts: &info.history,
            module: match &info.kind {
                TaskKind::Wasm { module } => Some(module.to_hex()),
                TaskKind::Command { .. } => None,
            },
            limits: info.limits,
            require: &info.require,
            after: &info.after,
            secrets: &info.secrets,
            outcome: OutcomeFields::new(outcome, logs),
        }
    }
}

/// A queued task's id: `fabric submit --json` without `--wait`.
#[derive(Debug, Serialize)]
pub(crate) struct SubmittedView {
    id: String,
}

impl SubmittedView {
    pub(crate) fn new(id: &TaskId) -> Self {
        Self { id: id.to_string() }
    }
}

/// One registered worker: `fabric workers --json`.
#[derive(Debug, Serialize)]
pub(crate) struct WorkerView<'a> {
    key: WorkerKey,
    name: &'a str,
    addr: &'a str,
    slots: u32,
    running: u32,
    memory_bytes: u64,
    labels: &'a [String],
    last_seen_ms: u64,
    state: &'static str,
    /// When it went down or was removed.
    since_ms: Option<u64>,
    /// Why it is down or removed.
    why: Option<&'a str>,
}

impl<'a> WorkerView<'a> {
    pub(crate) fn new(w: &'a WorkerSummary) -> Self {
        Self {
            key: w.key,
            name: &w.info.name,
            addr: &w.addr,
            slots: w.info.slots,
            running: w.running,
            memory_bytes: w.info.memory_bytes,
            labels: &w.info.labels,
            last_seen_ms: w.last_seen_ms,
            state: w.state.as_str(),
            since_ms: w.since_ms,
            why: w.why.as_deref(),
        }
    }
}

/// One demo job: its task, plus how it was expected to end.
#[derive(Debug, Serialize)]
pub(crate) struct DemoJobView<'a> {
    #[serde(flatten)]
    pub task: TaskView<'a>,
    pub job: &'static str,
    pub expected: &'static str,
    pub as_expected: bool,
}

/// The demo's fan-out round.
#[derive(Debug, Serialize)]
pub(crate) struct FanOutView<'a> {
    pub fan_out: u32,
    pub succeeded: u32,
    pub ms: u64,
    pub tasks_per_s: f64,
    /// Tasks per worker key (`?` when a task reported no worker).
    pub per_worker: &'a BTreeMap<String, u32>,
    pub tasks_in_history: usize,
}

/// The demo's last line.
#[derive(Debug, Serialize)]
pub(crate) struct DemoSummaryView {
    pub all_as_expected: bool,
    pub ms: u64,
}

#[cfg(test)]
mod tests {
    use fabric_proto::{Priority, TaskState, TaskStatus};
    use serde_json::{Value, json};

    use super::*;

    const OUTCOME_KEYS: [&str; 12] = [
        "exit_code",
        "stdout",
        "stderr",
        "stdout_truncated",
        "stderr_truncated",
        "fuel_used",
        "duration_ms",
        "peak_memory_bytes",
        "message",
        "logs",
        "status",
        "id",
    ];

    fn queued() -> TaskInfo {
        TaskInfo {
            id: TaskId::new(),
            state: TaskState::Queued,
            priority: Priority::High,
            kind: TaskKind::Wasm {
                module: Sha256::of(b"module"),
            },
            attempt: 0,
            retries: 2,
            worker: None,
            submitted_ms: 1,
            updated_ms: 2,
            status: None,
            dead_letter: false,
            outcome: None,
            waiting: Some("no worker is registered".into()),
            history: Vec::new(),
            worker_name: None,
            trace: None,
            limits: fabric_proto::Limits::default(),
            require: Vec::new(),
            after: Vec::new(),
            secrets: Vec::new(),
        }
    }

    fn to_json(view: &impl Serialize) -> Value {
        serde_json::to_value(view).unwrap()
    }

    #[test]
    fn an_unfinished_task_has_every_outcome_key_as_null() {
        let info = queued();
        let v = to_json(&TaskView::new(&info));
        for key in OUTCOME_KEYS {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
        for key in &OUTCOME_KEYS[..10] {
            assert_eq!(v[key], Value::Null, "{key} in {v}");
        }
        assert!(v.get("stdout_b64").is_none(), "{v}");
        assert_eq!(v["status"], "queued");
        assert_eq!(v["state"], "queued");
        assert_eq!(v["priority"], "high");
        assert_eq!(v["retries"], 2);
        assert_eq!(v["worker"], Value::Null);
        assert_eq!(v["module"], Sha256::of(b"module").to_hex());
        assert_eq!(v["id"], info.id.to_string());
        assert_eq!(v["limits"]["timeout_ms"], info.limits.timeout_ms);
    }

    #[test]
    fn a_finished_task_carries_its_outcome() {
        let mut info = queued();
        info.state = TaskState::Done;
        info.status = Some(TaskStatus::Succeeded);
        info.worker = Some(WorkerKey([0xab; 32]));
        let mut o = TaskOutcome::ended(TaskStatus::Succeeded, "fine");
        o.exit_code = Some(0);
        o.stdout = b"out".to_vec();
        o.fuel_used = 7;
        info.outcome = Some(o);
        let v = to_json(&TaskView::new(&info));
        assert_eq!(v["status"], "succeeded");
        assert_eq!(v["state"], "done");
        assert_eq!(v["worker"], "ab".repeat(32));
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["stdout"], "out");
        assert_eq!(v["stderr"], "");
        assert_eq!(v["fuel_used"], 7);
        assert_eq!(v["stdout_truncated"], false);
        assert_eq!(v["message"], "fine");
        assert_eq!(v["logs"], json!([]));
    }

    #[test]
    fn binary_output_goes_to_b64() {
        let mut o = TaskOutcome::rejected("x");
        o.stdout = vec![0xff, 0x00];
        o.stderr = b"text".to_vec();
        let logs = [LogView::new(LogLevel::Warn, "careful".into())];
        let v = to_json(&OutcomeView::new(&o, None, &logs));
        assert_eq!(v["stdout"], Value::Null);
        assert_eq!(v["stdout_b64"], "/wA=");
        assert_eq!(v["stderr"], "text");
        assert!(v.get("stderr_b64").is_none(), "{v}");
        assert!(v.get("module").is_none(), "{v}");
        assert_eq!(v["status"], "rejected");
        assert_eq!(v["logs"], json!([{"level": "warn", "message": "careful"}]));

        let mut info = queued();
        info.outcome = Some(o);
        let v = to_json(&TaskView::new(&info));
        assert_eq!(v["stdout"], Value::Null);
        assert_eq!(v["stdout_b64"], "/wA=");
        assert_eq!(v["stderr"], "text");
    }

    #[test]
    fn exec_names_the_module() {
        let o = TaskOutcome::ended(TaskStatus::Trapped, "boom");
        let v = to_json(&OutcomeView::new(&o, Some(Sha256::of(b"m")), &[]));
        assert_eq!(v["module"], Sha256::of(b"m").to_hex());
        assert_eq!(v["status"], "trapped");
        assert_eq!(v["exit_code"], Value::Null);
    }
}
