//! `fabric demo`'s report: a header, one line per example job, the fan-out
//! round and a verdict; in JSON, one object per job, then the fan-out and
//! the verdict objects.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fabric_proto::{TaskInfo, TaskOutcome, TaskStatus};

use super::Output;
use super::json::{DemoJobView, DemoSummaryView, FanOutView, TaskView};
use crate::units::format_size;

/// One demo job's identity and expectation.
pub(crate) struct DemoJob {
    pub name: &'static str,
    pub what: &'static str,
    pub expected: TaskStatus,
    /// It ended as expected.
    pub ok: bool,
}

/// The demo's map-reduce job.
pub(crate) struct DemoMapReduce {
    pub job: String,
    /// Parts counted (one task each).
    pub parts: usize,
    /// It succeeded with the whole text's counts.
    pub ok: bool,
    pub took: Duration,
    /// The merged report.
    pub top: String,
}

/// The fan-out round's results.
pub(crate) struct FanOut {
    /// Tasks submitted.
    pub tasks: u32,
    /// Tasks that succeeded.
    pub succeeded: u32,
    pub took: Duration,
    /// Tasks per worker key (`?` when a task reported none).
    pub per_worker: BTreeMap<String, u32>,
    /// Tasks in the dispatcher's history afterwards.
    pub stored: usize,
}

/// Worker keys shown in the demo: the first 8 hex characters.
fn short(key: &str) -> String {
    key.chars().take(8).collect()
}

impl Output {
    /// Where the demo cluster runs (human form only).
    pub(crate) fn demo_header(self, addr: &SocketAddr, workers: u32, dir: &Path) {
        self.human(|| {
            format!(
                "Fabric demo: dispatcher on {addr} (QUIC), {workers} workers, store in {}\n",
                dir.display()
            )
        });
    }

    /// One finished example job.
    pub(crate) fn demo_job(self, job: &DemoJob, info: &TaskInfo, outcome: &TaskOutcome) {
        self.emit(
            || DemoJobView {
                task: TaskView::new(info),
                job: job.name,
                expected: job.expected.as_str(),
                as_expected: job.ok,
            },
            || job_lines(job, info, outcome),
        );
    }

    /// The map-reduce job: its parts, its merged top words, and whether
    /// they are the whole text's.
    pub(crate) fn demo_mapreduce(self, m: &DemoMapReduce) {
        #[derive(serde::Serialize)]
        struct View<'a> {
            job: &'static str,
            id: &'a str,
            parts: usize,
            as_expected: bool,
            ms: u64,
            merged: &'a str,
        }
        self.emit(
            || View {
                job: "wordcount",
                id: &m.job,
                parts: m.parts,
                as_expected: m.ok,
                ms: m.took.as_millis() as u64,
                merged: &m.top,
            },
            || {
                format!(
                    "{} {:<15} a job: {} count tasks (one per part), then a merge; {:.2}s ({})\n      -> {}\n      -> the merged counts {} wordfreq's over the whole text",
                    if m.ok { "ok " } else { "BAD" },
                    "wordcount",
                    m.parts,
                    m.took.as_secs_f64(),
                    m.job,
                    m.top,
                    if m.ok { "match" } else { "DO NOT match" },
                )
            },
        );
    }

    /// The sandbox layers the native job ran with (human form only).
    pub(crate) fn demo_native_layers(self, layers: &str) {
        self.human(|| format!("        sandbox layers: {layers}"));
    }

    /// Why the native job did not run.
    pub(crate) fn demo_native_skipped(self, why: &str) {
        #[derive(serde::Serialize)]
        struct Skipped<'a> {
            job: &'static str,
            skipped: &'a str,
        }
        self.emit(
            || Skipped {
                job: "native",
                skipped: why,
            },
            || format!("--  native  skipped: {why}"),
        );
    }

    /// The fan-out round.
    pub(crate) fn demo_fan_out(self, fan: &FanOut) {
        let rate = f64::from(fan.tasks) / fan.took.as_secs_f64().max(1e-9);
        self.emit(
            || FanOutView {
                fan_out: fan.tasks,
                succeeded: fan.succeeded,
                ms: fan.took.as_millis() as u64,
                tasks_per_s: rate,
                per_worker: &fan.per_worker,
                tasks_in_history: fan.stored,
            },
            || {
                let spread: Vec<String> = fan
                    .per_worker
                    .iter()
                    .map(|(w, c)| format!("{}: {c}", short(w)))
                    .collect();
                format!(
                    "\nfan-out: {}/{} small tasks succeeded in {} ms ({rate:.0} tasks/s), per worker {}\n\
                     history: {} tasks recorded in the sled store",
                    fan.succeeded,
                    fan.tasks,
                    fan.took.as_millis(),
                    spread.join(", "),
                    fan.stored
                )
            },
        );
    }

    /// The files `demo --export` wrote, and what to try with them.
    pub(crate) fn demo_exported(self, dir: &Path, files: &[&str]) {
        #[derive(serde::Serialize)]
        struct ExportedView<'a> {
            exported: &'a Path,
            files: &'a [&'a str],
        }
        self.emit(
            || ExportedView {
                exported: dir,
                files,
            },
            || {
                format!(
                    "wrote {} files to {}: {}\n\
                     try them on a cluster of your own (README, \"A cluster on one machine\"):\n  \
                     cd {} && fabric up\n  \
                     fabric submit wordfreq.wasm --input book.txt --wait -- --top 5   # in another terminal",
                    files.len(),
                    dir.display(),
                    files.join(", "),
                    dir.display()
                )
            },
        );
    }

    /// The verdict.
    pub(crate) fn demo_footer(self, ok: bool, took: Duration) {
        self.emit(
            || DemoSummaryView {
                all_as_expected: ok,
                ms: took.as_millis() as u64,
            },
            || {
                if ok {
                    format!(
                        "\nall jobs ended as expected ({} ms in all)",
                        took.as_millis()
                    )
                } else {
                    "\nsome jobs did NOT end as expected (see BAD above)".into()
                }
            },
        );
    }
}

/// `ok  wordfreq  succeeded  12 ms  fuel ...` and a preview of the output.
fn job_lines(job: &DemoJob, info: &TaskInfo, o: &TaskOutcome) -> String {
    let worker = info
        .worker
        .as_ref()
        .map_or("-".into(), |w| short(&w.to_string()));
    let mark = if job.ok { "ok " } else { "BAD" };
    let detail = match &o.message {
        Some(m) if o.status != TaskStatus::Succeeded => m.clone(),
        _ => preview(o),
    };
    format!(
        "{mark} {:<15} {:<16} {:>6} ms  fuel {:>11}  worker {worker}  ({})\n      -> {detail}",
        job.name,
        o.status.as_str(),
        o.duration_ms,
        o.fuel_used,
        job.what
    )
}

/// The start of a job's stdout on one line, or what kind of bytes it is.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_flatten_text_and_name_images() {
        let mut o = TaskOutcome::ended(TaskStatus::Succeeded, "");
        o.stdout = b"a\n  b\tc".to_vec();
        assert_eq!(preview(&o), "a b c");
        o.stdout = b"x ".repeat(50);
        assert_eq!(preview(&o).chars().count(), 75);
        o.stdout = b"P5\n160 120\n255\n\xff\xfe\x00".to_vec();
        assert!(
            preview(&o).starts_with("PGM image P5 160 120"),
            "{}",
            preview(&o)
        );
        o.stdout = vec![0xff; 10];
        assert_eq!(preview(&o), "10 B of binary output");
    }
}
