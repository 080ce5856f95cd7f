//! A job's views: its submitted tasks, one progress bar while following
//! them, and a summary by status.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;

use fabric_proto::TaskId;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::{Output, note};

impl Output {
    /// The job's id and its tasks' ids: one id per line on stdout (for
    /// scripts), the job on stderr; one JSON object with `--json`.
    pub(crate) fn job_submitted(self, job: &str, ids: &[TaskId], quiet: bool) {
        #[derive(Serialize)]
        struct JobView<'a> {
            job: &'a str,
            tasks: Vec<String>,
        }
        self.emit(
            || JobView {
                job,
                tasks: ids.iter().map(ToString::to_string).collect(),
            },
            || {
                ids.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            },
        );
        if self == Self::Human && !quiet {
            note(&format!(
                "job {job}: {} task{} (fabric tasks --trace {job})",
                ids.len(),
                if ids.len() == 1 { "" } else { "s" }
            ));
        }
    }

    /// How the job's tasks ended, by status.
    pub(crate) fn job_summary(self, job: &str, by_status: &BTreeMap<String, u64>, quiet: bool) {
        #[derive(Serialize)]
        struct SummaryView<'a> {
            job: &'a str,
            statuses: &'a BTreeMap<String, u64>,
        }
        let total: u64 = by_status.values().sum();
        let parts: Vec<String> = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
        match self {
            Self::Json => super::json_line(&SummaryView {
                job,
                statuses: by_status,
            }),
            Self::Human if !quiet => {
                note(&format!("job {job}: {total} tasks: {}", parts.join(", ")));
            }
            Self::Human => {}
        }
    }
}

/// One bar for a job's tasks, on a terminal's stderr.
pub(crate) struct JobProgress(ProgressBar);

impl JobProgress {
    pub(crate) fn new(output: Output, quiet: bool, total: u64) -> Self {
        if output == Output::Json || quiet || !std::io::stderr().is_terminal() {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} tasks finished")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self(bar)
    }

    pub(crate) fn inc(&self) {
        self.0.inc(1);
    }

    /// `done` tasks have finished.
    pub(crate) fn set(&self, done: u64) {
        self.0.set_position(done);
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}
