//! The only place that writes to the terminal: task output, summaries,
//! progress, guest logs and errors, in human or JSON form.

use std::io::{IsTerminal as _, Write};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use fabric_proto::{GuestEvent, LogLevel, Sha256, TaskOutcome, TaskStatus};
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
