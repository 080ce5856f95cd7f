//! Why a queued task is not running, in the words `status` shows.

use fabric_proto::{TaskId, TaskKind, TaskRecord, TaskState, format_size};

use super::Scheduler;
use super::worker::Need;

impl Scheduler {
    /// Why a queued task waits (`None` for a task that is not queued, or
    /// one held cold: see [`Scheduler::why_waiting_of`]).
    pub fn why_waiting(&self, id: &TaskId, now: u64) -> Option<String> {
        self.why_waiting_of(self.tasks.get(id)?, now)
    }

    /// Why the task `rec` waits, for a record read back from the store (a
    /// cold task's, with its cold entry laid over it).
    pub fn why_waiting_of(&self, rec: &TaskRecord, now: u64) -> Option<String> {
        if rec.state == TaskState::Waiting {
            let parents: Vec<String> = rec.spec.after.iter().map(ToString::to_string).collect();
            return Some(format!(
                "waits for {} to succeed (--after): {}",
                if parents.len() == 1 {
                    "a task"
                } else {
                    "tasks"
                },
                parents.join(", ")
            ));
        }
        if rec.state == TaskState::Scheduled {
            let at = chrono::DateTime::from_timestamp_millis(rec.not_before_ms as i64)
                .map_or_else(String::new, |t| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                });
            let secs = rec.not_before_ms.saturating_sub(now).div_ceil(1000);
            return Some(format!("scheduled: starts at {at} (in {secs} s)"));
        }
        if rec.state != TaskState::Queued {
            return None;
        }
        if rec.not_before_ms > now {
            let secs = (rec.not_before_ms - now).div_ceil(1000);
            let why = if rec.refused > 0 {
                format!(
                    "a worker refused it {} time(s) in a row; offered again in {secs} s",
                    rec.refused
                )
            } else {
                format!(
                    "retry {} of {} starts in {secs} s",
                    rec.failures, rec.spec.retries
                )
            };
            return Some(why);
        }
        if let Some(unmet) = self.unmet_requirement(rec) {
            return Some(unmet);
        }
        let able: Vec<_> = self
            .workers
            .values()
            .filter(|w| w.could_run(&Need::of(rec)))
            .collect();
        if able.iter().all(|w| w.draining || !w.connected) {
            return Some(
                "every worker that could run it is draining or has lost its connection".to_owned(),
            );
        }
        Some(format!(
            "waiting for a free slot: {} worker(s) can run it and are busy",
            able.iter().filter(|w| !w.draining && w.connected).count()
        ))
    }

    /// Whether some registered worker runs this kind of task (a native
    /// task: allows its program).
    pub fn some_worker_runs(&self, kind: &TaskKind) -> bool {
        self.workers.values().any(|w| w.runs_kind(kind))
    }

    /// What no registered worker offers that `rec` needs (kind of work,
    /// memory), if anything: such a task cannot be placed until a worker
    /// that offers it registers.
    pub fn unmet_requirement(&self, rec: &TaskRecord) -> Option<String> {
        if self.workers.is_empty() {
            return Some("no worker is registered".to_owned());
        }
        let kind: Vec<_> = self
            .workers
            .values()
            .filter(|w| w.runs_kind(&rec.spec.kind))
            .collect();
        if kind.is_empty() {
            return Some(match &rec.spec.kind {
                TaskKind::Wasm { .. } => "no registered worker runs wasm tasks".to_owned(),
                TaskKind::Command { program, .. } => {
                    format!("no registered worker allows the program {program:?}")
                }
            });
        }
        if !rec.spec.require.is_empty() && !kind.iter().any(|w| w.carries(&rec.spec.require)) {
            return Some(missing_labels(&rec.spec.require, &kind));
        }
        let kind: Vec<_> = kind
            .into_iter()
            .filter(|w| w.carries(&rec.spec.require))
            .collect();
        let need = rec.spec.limits.memory_bytes;
        let largest = kind.iter().map(|w| w.memory).max().unwrap_or(0);
        if largest < need {
            return Some(format!(
                "no worker offers {} of memory; the largest offers {}",
                format_size(need),
                format_size(largest)
            ));
        }
        None
    }
}

/// "no registered worker carries the labels gpu, rack-2; closest: w1
/// (lacks rack-2), w2 (lacks gpu)": the workers that lack the fewest.
fn missing_labels(require: &[String], workers: &[&super::worker::Worker]) -> String {
    let lacks = |w: &super::worker::Worker| -> Vec<&str> {
        require
            .iter()
            .filter(|l| !w.labels.contains(*l))
            .map(String::as_str)
            .collect()
    };
    let fewest = workers.iter().map(|w| lacks(w).len()).min().unwrap_or(0);
    let mut closest: Vec<String> = workers
        .iter()
        .filter(|w| lacks(w).len() == fewest)
        .map(|w| format!("{} (lacks {})", w.name, lacks(w).join(", ")))
        .collect();
    closest.sort();
    let more = closest.len().saturating_sub(3);
    closest.truncate(3);
    let mut text = format!(
        "no registered worker carries the label{} {}; closest: {}",
        if require.len() == 1 { "" } else { "s" },
        require.join(", "),
        closest.join(", ")
    );
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}
