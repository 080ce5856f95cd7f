//! Human renderings of tasks and workers: the status line and the tables.
//! Each returns the text without its last newline.

use std::fmt::Write as _;

use fabric_proto::wire::WorkerSummary;
use fabric_proto::{TaskInfo, WorkerKey, now_ms};

use crate::units::format_size;

/// One task's state, its outcome (exit code, duration, message) and its
/// attempts, one per line.
/// `timeout 30 s, memory 256 MiB, fuel 10000000000, output 4 MiB each`
/// (disk instead of fuel for a native task).
fn limits_line(info: &TaskInfo) -> String {
    use fabric_proto::show_limit as show;
    let l = &info.limits;
    let third = match info.kind {
        fabric_proto::TaskKind::Wasm { .. } => format!("fuel {}", show("fuel", l.fuel)),
        fabric_proto::TaskKind::Command { .. } => {
            format!("disk {}", show("disk_bytes", l.disk_bytes))
        }
    };
    format!(
        "timeout {}, memory {}, {third}, output {} each",
        show("timeout_ms", l.timeout_ms),
        show("memory_bytes", l.memory_bytes),
        show("output_bytes", l.output_bytes)
    )
}

pub(super) fn status_line(info: &TaskInfo) -> String {
    let worker = match (&info.worker_name, info.worker.as_ref()) {
        (Some(name), Some(key)) => format!("{name} ({})", key.short()),
        (None, key) => short(key),
        (Some(name), None) => name.clone(),
    };
    let mut text = format!(
        "{}  {}  priority {}  attempt {}  retries {}  worker {}  updated {} ago",
        info.id,
        info.status_word(),
        info.priority,
        info.attempt,
        info.retries,
        worker,
        age(now_ms(), info.updated_ms)
    );
    if info.dead_letter {
        text.push_str("  (dead letter)");
    }
    let _ = write!(text, "\n  limits: {}", limits_line(info));
    if !info.secrets.is_empty() {
        let _ = write!(
            text,
            "\n  secrets: {} (values never shown)",
            info.secrets.join(", ")
        );
    }
    if !info.require.is_empty() {
        let _ = write!(text, "\n  requires labels: {}", info.require.join(", "));
    }
    if let Some(o) = &info.outcome {
        let code = o
            .exit_code
            .map_or_else(|| "no exit code".to_owned(), |c| format!("exit code {c}"));
        let _ = write!(text, "\n  {code}, ran {}", seconds(o.duration_ms));
        if let Some(m) = &o.message {
            let _ = write!(text, "\n  {m}");
        }
    }
    for a in &info.history {
        let took = a.ended_ms.map_or_else(
            || format!("{} so far", seconds(now_ms().saturating_sub(a.started_ms))),
            |end| seconds(end.saturating_sub(a.started_ms)),
        );
        let _ = write!(
            text,
            "\n  attempt {} on {}: {} ({took})",
            a.attempt,
            a.worker.short(),
            a.outcome.as_deref().unwrap_or("running")
        );
    }
    if let Some(w) = &info.waiting {
        let _ = write!(text, "\n  waiting: {w}");
    }
    text
}

/// Tasks, one per row, each id cut to the shortest start that tells the
/// listed tasks apart (any unique start is accepted back as an id).
pub(super) fn tasks(tasks: &[TaskInfo]) -> String {
    let now = now_ms();
    let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
    let digits = unique_digits(&ids);
    let shown: Vec<String> = ids.iter().map(|id| cut(id, digits)).collect();
    let width = shown.iter().map(String::len).max().unwrap_or(2).max(2);
    let mut out = format!(
        "{:<width$}  {:<16}  {:<6}  {:>7}  {:<12}  {:>5}",
        "ID", "STATUS", "PRIO", "ATTEMPT", "WORKER", "AGE"
    );
    for (t, id) in tasks.iter().zip(&shown) {
        let _ = write!(
            out,
            "\n{:<width$}  {:<16}  {:<6}  {:>7}  {:<12}  {:>5}",
            id,
            t.status_word(),
            t.priority.to_string(),
            t.attempt,
            short(t.worker.as_ref()),
            age(now, t.submitted_ms)
        );
    }
    if tasks.is_empty() {
        out.push_str("\n(no tasks)");
    }
    out
}

/// Fewest hex digits that tell all `ids` apart, and at least 20: ids are
/// UUIDv7, whose first 12 digits are the millisecond and the 13th the
/// version, so a shorter start would often match tasks not listed.
fn unique_digits(ids: &[String]) -> usize {
    let hex: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| id.bytes().filter(|b| *b != b'-').collect())
        .collect();
    let mut sorted = hex.clone();
    sorted.sort();
    let longest_shared = sorted
        .windows(2)
        .map(|w| w[0].iter().zip(&w[1]).take_while(|(a, b)| a == b).count())
        .max()
        .unwrap_or(0);
    (longest_shared + 1).clamp(20, 32)
}

/// The start of a hyphenated id holding `digits` hex digits.
fn cut(id: &str, digits: usize) -> String {
    let mut seen = 0;
    let mut out = String::new();
    for c in id.chars() {
        if seen == digits {
            break;
        }
        if c != '-' {
            seen += 1;
        }
        out.push(c);
    }
    out
}

/// Workers, one per row.
pub(super) fn workers(workers: &[WorkerSummary]) -> String {
    let now = now_ms();
    let row = |cells: [&str; 9]| {
        format!(
            "{:<16}  {:<12}  {:<8}  {:<22}  {:>5}  {:>7}  {:>9}  {:>9}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            cells[7],
            cells[8]
        )
    };
    let mut out = row([
        "NAME", "KEY", "STATE", "ADDR", "SLOTS", "RUNNING", "MEMORY", "SEEN", "LABELS",
    ]);
    for w in workers {
        let labels = if w.info.labels.is_empty() {
            "-".to_owned()
        } else {
            w.info.labels.join(",")
        };
        out.push('\n');
        out.push_str(
            row([
                &w.info.name,
                &w.key.short(),
                w.state.as_str(),
                &w.addr,
                &w.info.slots.to_string(),
                &w.running.to_string(),
                &format_size(w.info.memory_bytes),
                &format!("{} ago", age(now, w.last_seen_ms)),
                &labels,
            ])
            .trim_end(),
        );
        if let Some(why) = &w.why {
            let since = w
                .since_ms
                .map_or_else(String::new, |t| format!(" {} ago", age(now, t)));
            let _ = write!(out, "\n  {}{since}: {why}", w.state.as_str());
        }
    }
    if workers.is_empty() {
        out.push_str("\n(no workers registered)");
    }
    out
}

/// A duration in seconds, as people read it: `0.012 s`, `4.2 s`.
fn seconds(ms: u64) -> String {
    if ms < 1_000 {
        format!("{:.3} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// How long ago `ms` was, coarsely: `42s`, `5m`, `3h`, `2d`.
pub(super) fn age(now_ms: u64, ms: u64) -> String {
    let s = now_ms.saturating_sub(ms) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn short(key: Option<&WorkerKey>) -> String {
    key.map_or("-".into(), WorkerKey::short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_coarse() {
        assert_eq!(age(61_000, 1_000), "1m");
        assert_eq!(age(5_000, 1_000), "4s");
        assert_eq!(age(1_000, 5_000), "0s");
        assert_eq!(age(3 * 86_400_000, 0), "3d");
    }

    #[test]
    fn ids_are_cut_to_the_shortest_start_that_tells_them_apart() {
        let ids = [
            "01a23123-a93f-72a0-b44b-1252349cc00b".to_owned(),
            "01a23123-a93f-72a1-b44b-1252349cc00b".to_owned(),
            "01a23124-0000-7000-8000-000000000000".to_owned(),
        ];
        let mut close = ids.clone();
        close[1] = "01a23123-a93f-72a0-b44b-1252349cc00c".to_owned();
        assert_eq!(unique_digits(&close), 32);
        assert_eq!(unique_digits(&ids), 20, "at least 20");
        assert_eq!(cut(&ids[0], 20), "01a23123-a93f-72a0-b44b");
    }

    #[test]
    fn empty_tables_say_so() {
        assert!(tasks(&[]).ends_with("\n(no tasks)"));
        assert!(workers(&[]).starts_with("NAME "));
    }
}
