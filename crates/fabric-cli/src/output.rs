//! The only place that writes to the terminal: task output, summaries,
//! progress, guest logs and errors, in human or JSON form.

use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use fabric_net::{JoinToken, PublicKey};
use fabric_proto::wire::WorkerSummary;
use fabric_proto::{GuestEvent, LogLevel, Sha256, TaskId, TaskInfo, TaskOutcome, TaskStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

use crate::units::format_size;

/// Prints an error and its causes to stderr.
pub(crate) fn error(err: &anyhow::Error) {
    let _ = writeln!(std::io::stderr().lock(), "error: {err:#}");
}

/// Renders one task's events and outcome.
pub(crate) struct Report {
    json: bool,
    quiet: bool,
    bar: ProgressBar,
    logs: Arc<Mutex<Vec<(LogLevel, String)>>>,
}

impl Report {
    pub(crate) fn new(json: bool, quiet: bool) -> Self {
        let bar = if json || quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        };
        Self {
            json,
            quiet,
            bar,
            logs: Arc::default(),
        }
    }

    /// A sink for guest events: progress drives the bar, log lines go to
    /// stderr (human) or into the JSON object's `logs` (JSON).
    pub(crate) fn event_sink(&self) -> impl FnMut(GuestEvent) + Send + 'static {
        let bar = self.bar.clone();
        let logs = self.logs.clone();
        let json = self.json;
        move |event| match event {
            GuestEvent::Progress { done, total } => {
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(done);
            }
            GuestEvent::Log { level, message } => {
                if json {
                    logs.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((level, message));
                } else {
                    bar.suspend(|| {
                        let _ = writeln!(
                            std::io::stderr().lock(),
                            "[task {}] {message}",
                            level.as_str()
                        );
                    });
                }
            }
        }
    }

    /// Prints the outcome: the task's own stdout/stderr and a summary line, or
    /// one JSON object.
    pub(crate) fn outcome(&self, outcome: &TaskOutcome, module: Option<Sha256>) {
        self.bar.finish_and_clear();
        if self.json {
            let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
            let value = outcome_json(outcome, module, &logs);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
            return;
        }
        {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&outcome.stdout);
            let _ = out.flush();
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&outcome.stderr);
        if outcome.stdout_truncated {
            let _ = writeln!(err, "fabric: stdout was cut at the output limit");
        }
        if outcome.stderr_truncated {
            let _ = writeln!(err, "fabric: stderr was cut at the output limit");
        }
        let ok = outcome.status == TaskStatus::Succeeded;
        if ok && self.quiet {
            return;
        }
        let _ = writeln!(err, "fabric: {}", summary(outcome));
    }
}

impl Report {
    /// Shows that a submitted task is being waited on.
    pub(crate) fn waiting(&self, id: &TaskId) {
        if !self.json && !self.quiet {
            self.bar.suspend(|| {
                let _ = writeln!(std::io::stderr().lock(), "fabric: submitted {id}, waiting");
            });
        }
    }

    /// Prints a finished task like [`Report::outcome`], with its id; returns
    /// the exit code of the contract.
    pub(crate) fn task(&self, info: &TaskInfo) -> i32 {
        let outcome = outcome_of(info);
        self.bar.finish_and_clear();
        if self.json {
            let logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
            let mut value = outcome_json(&outcome, None, &logs);
            merge_task_fields(&mut value, info);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{value}");
            let _ = out.flush();
        } else {
            self.outcome(&outcome, None);
        }
        outcome.cli_exit_code()
    }
}

/// The task's outcome, or one made up from its status when none was
/// recorded (e.g. cancelled while queued).
fn outcome_of(info: &TaskInfo) -> TaskOutcome {
    info.outcome.clone().unwrap_or_else(|| {
        let mut o = TaskOutcome::rejected(format!("task is {}", info.state));
        o.status = info.status.unwrap_or(TaskStatus::Rejected);
        o
    })
}

fn merge_task_fields(value: &mut Value, info: &TaskInfo) {
    if let Value::Object(map) = value {
        map.insert("id".into(), json!(info.id.to_string()));
        map.insert("status".into(), json!(info.status_word()));
        map.insert("state".into(), json!(info.state.as_str()));
        map.insert("priority".into(), json!(info.priority.to_string()));
        map.insert("attempt".into(), json!(info.attempt));
        map.insert("retries".into(), json!(info.retries));
        map.insert("worker".into(), json!(info.worker));
        map.insert("submitted_ms".into(), json!(info.submitted_ms));
        map.insert("updated_ms".into(), json!(info.updated_ms));
        map.insert("dead_letter".into(), json!(info.dead_letter));
        if let fabric_proto::TaskKind::Wasm { module } = &info.kind {
            map.insert("module".into(), json!(module.to_hex()));
        }
    }
}

/// A task as one JSON object: its fields, plus the outcome's when finished.
pub(crate) fn task_json(info: &TaskInfo) -> Value {
    let mut value = match &info.outcome {
        Some(o) => outcome_json(o, None, &[]),
        None => json!({}),
    };
    merge_task_fields(&mut value, info);
    value
}

fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// One line on stdout.
pub(crate) fn line(text: &impl std::fmt::Display) {
    stdout_line(&text.to_string());
}

/// What a starting dispatcher tells its operator.
pub(crate) fn served(
    addr: &std::net::SocketAddr,
    key: &PublicKey,
    token: &JoinToken,
    profile: &std::path::Path,
) {
    stdout_line(&format!(
        "dispatcher listening on {addr} (QUIC, ALPN fabric/1)"
    ));
    stdout_line(&format!("dispatcher key {key}"));
    stdout_line(&format!("join token {token}"));
    stdout_line(&format!("cluster profile written to {}", profile.display()));
}

/// The readiness line tests and scripts wait for.
pub(crate) fn ready() {
    stdout_line("ready");
}

/// A submitted task's id.
pub(crate) fn submitted(id: &TaskId, json: bool) {
    if json {
        stdout_line(&json!({"id": id.to_string()}).to_string());
    } else {
        stdout_line(&id.to_string());
    }
}

fn age(ms: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn short(key: &Option<fabric_proto::WorkerKey>) -> String {
    key.as_ref().map_or("-".into(), |k| k.short())
}

/// One task's state.
pub(crate) fn status(info: &TaskInfo, json: bool) {
    if json {
        stdout_line(&task_json(info).to_string());
        return;
    }
    let mut text = format!(
        "{}  {}  priority {}  attempt {}  worker {}  updated {} ago",
        info.id,
        info.status_word(),
        info.priority,
        info.attempt,
        short(&info.worker),
        age(info.updated_ms)
    );
    if info.dead_letter {
        text.push_str("  (dead letter)");
    }
    if let Some(m) = info.outcome.as_ref().and_then(|o| o.message.as_ref()) {
        text.push_str(&format!("\n  {m}"));
    }
    stdout_line(&text);
}

/// A task table.
pub(crate) fn tasks(tasks: &[TaskInfo], json: bool) {
    if json {
        stdout_line(&Value::Array(tasks.iter().map(task_json).collect()).to_string());
        return;
    }
    let mut out = format!(
        "{:<36}  {:<16}  {:<6}  {:>7}  {:<12}  {:>5}\n",
        "ID", "STATUS", "PRIO", "ATTEMPT", "WORKER", "AGE"
    );
    for t in tasks {
        out.push_str(&format!(
            "{:<36}  {:<16}  {:<6}  {:>7}  {:<12}  {:>5}\n",
            t.id.to_string(),
            t.status_word(),
            t.priority.to_string(),
            t.attempt,
            short(&t.worker),
            age(t.submitted_ms)
        ));
    }
    if tasks.is_empty() {
        out.push_str("(no tasks)\n");
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// A worker table.
pub(crate) fn workers(workers: &[WorkerSummary], json: bool) {
    if json {
        let v: Vec<Value> = workers
            .iter()
            .map(|w| {
                json!({
                    "key": w.key, "name": w.info.name, "addr": w.addr, "slots": w.info.slots,
                    "running": w.running, "memory_bytes": w.info.memory_bytes,
                    "labels": w.info.labels, "last_seen_ms": w.last_seen_ms,
                })
            })
            .collect();
        stdout_line(&Value::Array(v).to_string());
        return;
    }
    let mut out = format!(
        "{:<16}  {:<12}  {:<22}  {:>5}  {:>7}  {:>9}  {:>9}\n",
        "NAME", "KEY", "ADDR", "SLOTS", "RUNNING", "MEMORY", "SEEN"
    );
    for w in workers {
        out.push_str(&format!(
            "{:<16}  {:<12}  {:<22}  {:>5}  {:>7}  {:>9}  {:>9}\n",
            w.info.name,
            w.key.short(),
            w.addr,
            w.info.slots,
            w.running,
            format_size(w.info.memory_bytes),
            format!("{} ago", age(w.last_seen_ms))
        ));
    }
    if workers.is_empty() {
        out.push_str("(no workers registered)\n");
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// One demo job's identity and expectation.
pub(crate) struct DemoLine {
    pub name: &'static str,
    pub what: &'static str,
    pub expected: TaskStatus,
    pub ok: bool,
}

pub(crate) fn demo_header(
    addr: &std::net::SocketAddr,
    workers: u32,
    dir: &std::path::Path,
    json: bool,
) {
    if json {
        return;
    }
    stdout_line(&format!(
        "Fabric demo: dispatcher on {addr} (QUIC), {workers} workers, store in {}\n",
        dir.display()
    ));
}

fn preview(o: &TaskOutcome) -> String {
    match std::str::from_utf8(&o.stdout) {
        Ok(text) => {
            let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            if flat.chars().count() > 72 {
                format!("{}...", flat.chars().take(72).collect::<String>())
            } else {
                flat
            }
        }
        Err(_) if o.stdout.starts_with(b"P5") => {
            let header: String = String::from_utf8_lossy(&o.stdout[..o.stdout.len().min(16)])
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            format!("PGM image {header}, {}", format_size(o.stdout.len() as u64))
        }
        Err(_) => format!("{} of binary output", format_size(o.stdout.len() as u64)),
    }
}

pub(crate) fn demo_line(job: &DemoLine, info: &TaskInfo, o: &TaskOutcome, json: bool) {
    let worker = info.worker.as_ref().map_or("-".into(), |w| {
        w.to_string().chars().take(8).collect::<String>()
    });
    if json {
        let mut v = task_json(info);
        if let Value::Object(m) = &mut v {
            m.insert("job".into(), json!(job.name));
            m.insert("expected".into(), json!(job.expected.as_str()));
            m.insert("as_expected".into(), json!(job.ok));
        }
        stdout_line(&v.to_string());
        return;
    }
    let mark = if job.ok { "ok " } else { "BAD" };
    stdout_line(&format!(
        "{mark} {:<15} {:<16} {:>6} ms  fuel {:>11}  worker {worker}  ({})",
        job.name,
        o.status.as_str(),
        o.duration_ms,
        o.fuel_used,
        job.what
    ));
    let detail = match &o.message {
        Some(m) if o.status != TaskStatus::Succeeded => m.clone(),
        _ => preview(o),
    };
    stdout_line(&format!("      -> {detail}"));
}

pub(crate) fn demo_fan_out(
    n: u32,
    ok: u32,
    took: std::time::Duration,
    per_worker: &std::collections::BTreeMap<String, u32>,
    stored: usize,
    json: bool,
) {
    let rate = f64::from(n) / took.as_secs_f64().max(1e-9);
    if json {
        stdout_line(&json!({"fan_out": n, "succeeded": ok, "ms": took.as_millis() as u64, "tasks_per_s": rate, "per_worker": per_worker, "tasks_in_history": stored}).to_string());
        return;
    }
    let spread: Vec<String> = per_worker
        .iter()
        .map(|(w, c)| format!("{}: {c}", w.chars().take(8).collect::<String>()))
        .collect();
    stdout_line(&format!(
        "\nfan-out: {ok}/{n} small tasks succeeded in {} ms ({rate:.0} tasks/s), per worker {}",
        took.as_millis(),
        spread.join(", ")
    ));
    stdout_line(&format!(
        "history: {stored} tasks recorded in the sled store"
    ));
}

pub(crate) fn demo_footer(ok: bool, took: std::time::Duration, json: bool) {
    if json {
        stdout_line(&json!({"all_as_expected": ok, "ms": took.as_millis() as u64}).to_string());
        return;
    }
    if ok {
        stdout_line(&format!(
            "\nall jobs ended as expected ({} ms in all)",
            took.as_millis()
        ));
    } else {
        stdout_line("\nsome jobs did NOT end as expected (see BAD above)");
    }
}

fn summary(o: &TaskOutcome) -> String {
    let mut s = match (o.status, o.exit_code) {
        (TaskStatus::Succeeded | TaskStatus::Failed, Some(code)) => {
            format!("{} (exit {code})", o.status)
        }
        (status, _) => status.to_string(),
    };
    if let Some(m) = &o.message {
        s.push_str(": ");
        s.push_str(m);
    }
    if o.status != TaskStatus::Rejected {
        s.push_str(&format!(
            " in {} ms, fuel {}, peak memory {}",
            o.duration_ms,
            o.fuel_used,
            format_size(o.peak_memory_bytes)
        ));
    }
    s
}

/// Puts `bytes` under `key` as text, or under `<key>_b64` when not UTF-8.
fn put_bytes(map: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            map.insert(key.into(), Value::String(text.into()));
        }
        Err(_) => {
            map.insert(key.into(), Value::Null);
            map.insert(
                format!("{key}_b64"),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
    }
}

/// The JSON object of the user contract for one outcome.
pub(crate) fn outcome_json(
    o: &TaskOutcome,
    module: Option<Sha256>,
    logs: &[(LogLevel, String)],
) -> Value {
    let mut map = Map::new();
    map.insert("status".into(), json!(o.status.as_str()));
    map.insert("exit_code".into(), json!(o.exit_code));
    put_bytes(&mut map, "stdout", &o.stdout);
    put_bytes(&mut map, "stderr", &o.stderr);
    map.insert("stdout_truncated".into(), json!(o.stdout_truncated));
    map.insert("stderr_truncated".into(), json!(o.stderr_truncated));
    map.insert("fuel_used".into(), json!(o.fuel_used));
    map.insert("duration_ms".into(), json!(o.duration_ms));
    map.insert("peak_memory_bytes".into(), json!(o.peak_memory_bytes));
    map.insert("message".into(), json!(o.message));
    if let Some(m) = module {
        map.insert("module".into(), json!(m.to_hex()));
    }
    map.insert(
        "logs".into(),
        Value::Array(
            logs.iter()
                .map(|(l, m)| json!({"level": l.as_str(), "message": m}))
                .collect(),
        ),
    );
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_stdout_goes_to_b64() {
        let mut o = TaskOutcome::rejected("x");
        o.stdout = vec![0xff, 0x00];
        o.stderr = b"text".to_vec();
        let v = outcome_json(&o, None, &[]);
        assert_eq!(v["stdout"], Value::Null);
        assert_eq!(v["stdout_b64"], "/wA=");
        assert_eq!(v["stderr"], "text");
        assert_eq!(v["status"], "rejected");
    }
}
