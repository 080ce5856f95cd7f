//! One run's progress and outcome: `fabric exec`, `submit --wait`, `result`.
//!
//! Human form: a progress bar on a terminal's stderr, guest log lines on
//! stderr, then the task's own stdout and stderr byte for byte and a summary
//! line. JSON form: nothing until the end, then one object that also holds
//! the log lines.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};

use fabric_client::Queued;
use fabric_proto::{GuestEvent, OutputStream, Sha256, TaskInfo, TaskOutcome, TaskStatus};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Output;
use super::json::{LogView, OutcomeView, TaskView};
use crate::units::format_size;

/// Renders one task's events and outcome.
pub(crate) struct Reporter {
    output: Output,
    quiet: bool,
    bar: ProgressBar,
    /// Guest log lines, kept for the JSON object.
    logs: Arc<Mutex<Vec<LogView>>>,
    /// A native command's stdout and stderr as printed live, so the result
    /// prints only what did not stream.
    live: Arc<Mutex<[Vec<u8>; 2]>>,
}

impl Reporter {
    /// `quiet` drops the summary line (the exit code still tells how the
    /// task ended).
    pub(crate) fn new(output: Output, quiet: bool) -> Self {
        let bar = if output == Output::Json || quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            // A spinner with the task's state and a ticking timer; a bar
            // only once the guest reports progress.
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message("submitting");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        };
        Self {
            output,
            quiet,
            bar,
            logs: Arc::default(),
            live: Arc::default(),
        }
    }

    /// A sink for guest events: progress drives the bar, log lines go to
    /// stderr (human) or into the JSON object's `logs` (JSON).
    pub(crate) fn event_sink(&self) -> impl FnMut(GuestEvent) + Send + 'static {
        let bar = self.bar.clone();
        let logs = self.logs.clone();
        let live = self.live.clone();
        let output = self.output;
        move |event| match event {
            GuestEvent::Output { .. } if output == Output::Json => {}
            GuestEvent::Output { stream, bytes } => bar.suspend(|| {
                let i = usize::from(stream == OutputStream::Stderr);
                let _ = if i == 0 {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes).and_then(|()| out.flush())
                } else {
                    std::io::stderr().lock().write_all(&bytes)
                };
                live.lock().unwrap_or_else(PoisonError::into_inner)[i].extend_from_slice(&bytes);
            }),
            GuestEvent::Progress { done, total } => {
                if total > 0 && bar.length().is_none() {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len}  {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                }
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(done);
            }
            GuestEvent::Log { level, message } => match output {
                Output::Json => logs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(LogView::new(level, message)),
                Output::Human => bar.suspend(|| {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "[task {}] {message}",
                        level.as_str()
                    );
                }),
            },
        }
    }

    /// Shows that a submitted task is being waited on.
    /// Shows what the task is doing now (from `fabric status`), while it is
    /// followed on a terminal.
    pub(crate) fn state(&self, info: &TaskInfo) {
        if !self.bar.is_hidden() {
            self.bar.set_message(state_message(info));
        }
    }

    /// Clears the spinner (before a note that ends the wait).
    pub(crate) fn clear(&self) {
        self.bar.finish_and_clear();
    }

    /// Whether the state is shown (worth polling for).
    pub(crate) fn shows_state(&self) -> bool {
        !self.bar.is_hidden()
    }

    pub(crate) fn waiting(&self, queued: &Queued) {
        let id = queued.id;
        if self.output == Output::Human && !self.quiet {
            self.bar.suspend(|| {
                let _ = writeln!(std::io::stderr().lock(), "fabric: submitted {id}, waiting");
            });
        }
        if let Some(w) = &queued.warning {
            self.bar
                .suspend(|| super::warning(&format!("task {id} may wait long: {w}")));
        }
    }

    /// Prints a local run's outcome; `module` is its digest, once read.
    pub(crate) fn outcome(&self, outcome: &TaskOutcome, module: Option<Sha256>) {
        self.finish(outcome, |logs| {
            super::json_line(&OutcomeView::new(outcome, module, logs));
        });
    }

    /// Prints a finished cluster task like [`Reporter::outcome`], with its
    /// id and task fields; returns the exit code of the contract.
    pub(crate) fn task(&self, info: &TaskInfo) -> i32 {
        let outcome = outcome_of(info);
        self.finish(&outcome, |logs| {
            super::json_line(&TaskView::with_outcome(info, Some(&outcome), logs));
        });
        outcome.cli_exit_code()
    }

    /// Clears the bar, then prints the outcome for people, or hands the
    /// collected log lines to `json`, which prints the object.
    fn finish(&self, outcome: &TaskOutcome, json: impl FnOnce(&[LogView])) {
        self.bar.finish_and_clear();
        match self.output {
            Output::Json => json(&self.logs.lock().unwrap_or_else(PoisonError::into_inner)),
            Output::Human => self.human_outcome(outcome),
        }
    }

    /// The task's own output byte for byte, then notes and the summary on
    /// stderr.
    fn human_outcome(&self, outcome: &TaskOutcome) {
        let live = std::mem::take(&mut *self.live.lock().unwrap_or_else(PoisonError::into_inner));
        {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(unstreamed(&outcome.stdout, &live[0]));
            let _ = out.flush();
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(unstreamed(&outcome.stderr, &live[1]));
        if outcome.stdout_truncated {
            let _ = writeln!(err, "fabric: stdout was cut at the output limit");
        }
        if outcome.stderr_truncated {
            let _ = writeln!(err, "fabric: stderr was cut at the output limit");
        }
        if self.quiet {
            return;
        }
        let _ = writeln!(err, "fabric: {}", summary(outcome));
    }
}

/// What of a stream's kept output was not printed live: the rest after
/// the printed prefix, or all of it when the live output had gaps (a slow
/// reader drops chunks) and so is not a prefix.
fn unstreamed<'a>(kept: &'a [u8], printed: &[u8]) -> &'a [u8] {
    if printed.is_empty() {
        return kept;
    }
    match kept.strip_prefix(printed) {
        Some(rest) => rest,
        None if printed.starts_with(kept) => &[],
        None => kept,
    }
}

/// The task's outcome, or one made up from its status when none was
/// recorded (e.g. cancelled while queued).
fn outcome_of(info: &TaskInfo) -> TaskOutcome {
    info.outcome.clone().unwrap_or_else(|| {
        TaskOutcome::ended(
            info.status.unwrap_or(TaskStatus::Rejected),
            format!("task is {}", info.state),
        )
    })
}

/// `succeeded (exit 0) in 12 ms, fuel 3400, peak memory 1.1 MiB`.
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
        s.push_str(&format!(" in {} ms", o.duration_ms));
        // A native command measures neither.
        if o.fuel_used > 0 || o.peak_memory_bytes > 0 {
            s.push_str(&format!(
                ", fuel {}, peak memory {}",
                o.fuel_used,
                format_size(o.peak_memory_bytes)
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_the_exit_code_and_costs() {
        let mut o = TaskOutcome::ended(TaskStatus::Failed, "bad input");
        o.exit_code = Some(3);
        o.duration_ms = 12;
        o.fuel_used = 40;
        o.peak_memory_bytes = 2048;
        assert_eq!(
            summary(&o),
            "failed (exit 3): bad input in 12 ms, fuel 40, peak memory 2 KiB"
        );
        assert_eq!(summary(&TaskOutcome::rejected("no")), "rejected: no");
    }
}

/// One line on what a live task is doing: `queued: no worker offers 2 GiB
/// of memory`, `running on 3f2a9c01b7d4 (attempt 2 of 4)`.
pub(crate) fn state_message(info: &TaskInfo) -> String {
    let attempts = if info.attempt > 1 {
        format!(" (attempt {})", info.attempt)
    } else {
        String::new()
    };
    match info.state {
        fabric_proto::TaskState::Queued => match &info.waiting {
            Some(why) => format!("queued: {why}"),
            None => "queued".to_owned(),
        },
        // "scheduled: starts at 2026-12-07T02:00:00Z (in 30 s)".
        fabric_proto::TaskState::Scheduled => info
            .waiting
            .clone()
            .unwrap_or_else(|| info.state.to_string()),
        fabric_proto::TaskState::Running => format!(
            "running on {}{attempts}",
            info.worker
                .map_or_else(|| "a worker".to_owned(), |w| w.short())
        ),
        _ => info.state.to_string(),
    }
}

#[cfg(test)]
mod state_tests {
    use fabric_proto::{Sha256, TaskId, TaskRecord, TaskSpec, TaskState, WorkerKey};

    use super::state_message;

    #[test]
    fn the_state_line_says_why_it_waits_and_where_it_runs() {
        let rec = TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 1, 0);
        let mut info = rec.info(None);
        info.waiting = Some("no worker is registered".into());
        assert_eq!(state_message(&info), "queued: no worker is registered");
        info.state = TaskState::Running;
        info.worker = Some(WorkerKey([7; 32]));
        info.attempt = 2;
        info.retries = 3;
        assert_eq!(
            state_message(&info),
            format!("running on {} (attempt 2)", WorkerKey([7; 32]).short())
        );
    }
}
