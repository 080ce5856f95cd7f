//! Job-file jobs: the submitted job, its status by step, the job list, and
//! what a cancel or rescue touched. JSON is the [`JobView`] as the REST
//! API gives it.

use fabric_proto::{JobId, JobView, TaskId};
use serde::Serialize;

use super::{Output, note, table};

/// `3 succeeded, 1 running` from a job's counts.
fn counts(view: &JobView) -> String {
    view.counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Output {
    /// A queued job: its id on stdout; the steps' task counts on stderr.
    pub(crate) fn job_queued(self, id: &JobId, steps: &[(String, Vec<TaskId>)], quiet: bool) {
        #[derive(Serialize)]
        struct Queued<'a> {
            job: String,
            steps: Vec<Step<'a>>,
        }
        #[derive(Serialize)]
        struct Step<'a> {
            name: &'a str,
            tasks: &'a [TaskId],
        }
        self.emit(
            || Queued {
                job: id.to_string(),
                steps: steps
                    .iter()
                    .map(|(name, tasks)| Step { name, tasks })
                    .collect(),
            },
            || id.to_string(),
        );
        if self == Self::Human && !quiet {
            let total: usize = steps.iter().map(|(_, t)| t.len()).sum();
            note(&format!(
                "job {id}: {} steps, {total} tasks (fabric job status {id})",
                steps.len()
            ));
        }
    }

    /// One job, step by step, each task with its state.
    pub(crate) fn job(self, view: &JobView) {
        self.emit(
            || view,
            || {
                let now = fabric_proto::now_ms();
                let mut out = format!(
                    "job {}  {}  {}  submitted {} ago{}\n  {}\n",
                    view.id,
                    view.name,
                    view.state,
                    table::age(now, view.submitted_ms),
                    match view.rescues {
                        0 => String::new(),
                        n => format!(", rescued {n}x"),
                    },
                    counts(view)
                );
                for step in &view.steps {
                    let after = if step.after.is_empty() {
                        String::new()
                    } else {
                        format!(" (after {})", step.after.join(", "))
                    };
                    out.push_str(&format!("step {}{after}\n", step.name));
                    for t in &step.tasks {
                        let item = t
                            .item
                            .as_deref()
                            .map(|i| format!("  {i}"))
                            .unwrap_or_default();
                        out.push_str(&format!("  {}  {:<10}{item}\n", t.id, t.status));
                    }
                }
                out.trim_end().to_owned()
            },
        );
    }

    /// Jobs, newest first.
    pub(crate) fn jobs(self, views: &[JobView]) {
        self.emit(
            || views,
            || {
                if views.is_empty() {
                    return "no jobs".to_owned();
                }
                let now = fabric_proto::now_ms();
                let mut out = format!(
                    "{:<42} {:<10} {:>8}  {:<16} TASKS\n",
                    "JOB", "STATE", "AGE", "NAME"
                );
                for v in views {
                    out.push_str(&format!(
                        "{:<42} {:<10} {:>8}  {:<16} {}\n",
                        v.id.to_string(),
                        v.state.to_string(),
                        table::age(now, v.submitted_ms),
                        v.name,
                        counts(v)
                    ));
                }
                out.trim_end().to_owned()
            },
        );
    }

    /// What `job cancel` or `job retry` did.
    pub(crate) fn job_touched(self, id: &JobId, what: &str, tasks: u32) {
        #[derive(Serialize)]
        struct Touched<'a> {
            job: String,
            action: &'a str,
            tasks: u32,
        }
        self.emit(
            || Touched {
                job: id.to_string(),
                action: what,
                tasks,
            },
            || {
                format!(
                    "job {id}: {what} {tasks} task{}",
                    if tasks == 1 { "" } else { "s" }
                )
            },
        );
    }

    /// How a followed job ended: each step's counts.
    pub(crate) fn job_ended(self, view: &JobView, quiet: bool) {
        match self {
            Self::Json => super::json_line(view),
            Self::Human if !quiet => {
                note(&format!("job {} {}: {}", view.id, view.state, counts(view)));
                for step in &view.steps {
                    let bad: Vec<String> = step
                        .tasks
                        .iter()
                        .filter(|t| t.status != "succeeded")
                        .map(|t| format!("{} {}", t.id, t.status))
                        .collect();
                    if !bad.is_empty() {
                        note(&format!("  step {}: {}", step.name, bad.join(", ")));
                    }
                }
            }
            Self::Human => {}
        }
    }
}
