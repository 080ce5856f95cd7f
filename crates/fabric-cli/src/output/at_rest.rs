//! What `fabric admin` prints: keys, rotation and rewrap progress,
//! backups, restores, the audit trail.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::Path;

use fabric_proto::wire::{AuditEntry, BackupView, KeysView, MemberView, RewrapView};
use fabric_proto::{format_size, now_ms};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::Output;
use super::table::age;

/// A bar on a terminal's stderr, hidden for JSON or a pipe.
fn bar(output: Output, len: Option<u64>, template: &str) -> ProgressBar {
    if output == Output::Json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A rewrap's progress.
pub(crate) struct Rewrap(ProgressBar);

impl Rewrap {
    pub(crate) fn start(output: Output) -> Self {
        Self(bar(
            output,
            None,
            "{elapsed:>4} {spinner} rewrapping: {msg}",
        ))
    }

    pub(crate) fn show(&self, p: &RewrapView) {
        self.0.set_message(format!(
            "{} values and files looked at, {} re-encrypted",
            p.seen, p.resealed
        ));
        self.0.tick();
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Bytes coming in (a backup).
pub(crate) struct Transfer(ProgressBar);

impl Transfer {
    pub(crate) fn start(output: Output, what: &str) -> Self {
        Self(bar(
            output,
            None,
            &format!("{{elapsed:>4}} {{spinner}} {what}: {{bytes}} ({{bytes_per_sec}})"),
        ))
    }

    pub(crate) fn add(&self, n: u64) {
        self.0.inc(n);
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

#[derive(Serialize)]
struct Saved<'a, T: Serialize> {
    #[serde(flatten)]
    what: &'a T,
    path: String,
}

impl Output {
    /// The keyring.
    pub(crate) fn keys(self, k: &KeysView) {
        self.emit(|| k, || keys_text(k));
    }

    /// A rotation (and its rewrap, when followed to the end).
    pub(crate) fn key_rotated(self, k: &KeysView, rewrapped: bool) {
        self.emit(
            || k,
            || {
                let active = k.keys.iter().find(|x| x.active).map_or(0, |x| x.id);
                let mut t = format!("data key {active} now seals new values; older keys stay for reading");
                if rewrapped && let Some(r) = &k.rewrap {
                    let _ = write!(
                        t,
                        "\nrewrap done: {} values and files looked at, {} re-encrypted with key {active}",
                        r.seen, r.resealed
                    );
                }
                t
            },
        );
    }

    /// A backup written to `path`.
    pub(crate) fn backed_up(self, v: &BackupView, path: &Path) {
        self.emit(
            || Saved {
                what: v,
                path: path.display().to_string(),
            },
            || {
                format!(
                    "backup written to {} ({}): {} tasks, {} results, {} jobs, {} schedules, {} events, {} blob files (store format {})",
                    path.display(),
                    format_size(v.bytes),
                    v.tasks,
                    v.results,
                    v.jobs,
                    v.schedules,
                    v.events,
                    v.files,
                    v.format
                )
            },
        );
    }

    /// A backup restored into `dir`.
    pub(crate) fn restored(self, s: &fabric_dispatcher::BackupSummary, dir: &Path) {
        self.emit(
            || Saved {
                what: s,
                path: dir.display().to_string(),
            },
            || {
                format!(
                    "restored into {}: {} tasks, {} results, {} jobs, {} schedules, {} blob files, taken {}\nstart it with: fabric dispatcher --data-dir {} (and the --key-file its dispatcher had, if it had one)",
                    dir.display(),
                    s.tasks,
                    s.results,
                    s.jobs,
                    s.schedules,
                    s.files,
                    age(now_ms(), s.taken_ms),
                    dir.display()
                )
            },
        );
    }

    /// The audit trail.
    pub(crate) fn audit(self, entries: &[AuditEntry]) {
        self.emit(
            || entries,
            || {
                if entries.is_empty() {
                    return "no admin actions recorded".to_owned();
                }
                let mut t = format!("{:<10} {:<24} {:<15} DETAIL", "WHEN", "WHO", "ACTION");
                for e in entries {
                    let detail = match e.task {
                        Some(id) => format!("task {id}: {}", e.detail),
                        None => e.detail.clone(),
                    };
                    let _ = write!(
                        t,
                        "\n{:<10} {:<24} {:<15} {detail}",
                        age(now_ms(), e.at_ms),
                        e.actor,
                        e.action
                    );
                }
                t
            },
        );
    }
}

impl Output {
    /// `fabric admin members`.
    pub(crate) fn members(self, members: &[MemberView]) {
        self.emit(
            || members,
            || {
                if members.is_empty() {
                    return "this dispatcher runs alone (no --peer): it is not in a group".to_owned();
                }
                let mut t = format!(
                    "{:<22} {:<17} {:<10} {:<6} {:>9} {:>9} {:>5}",
                    "ADDRESS", "KEY", "ROLE", "VOTES", "LOG", "APPLIED", "TERM"
                );
                let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
                for m in members {
                    let _ = write!(
                        t,
                        "\n{:<22} {:<17} {:<10} {:<6} {:>9} {:>9} {:>5}",
                        if m.this { format!("{} *", m.addr) } else { m.addr.clone() },
                        m.key.get(..16).unwrap_or(&m.key),
                        m.role,
                        if m.voter { "yes" } else { "no" },
                        opt(m.log_index),
                        opt(m.applied),
                        opt(m.term),
                    );
                }
                t.push_str("\n* the dispatcher that answered (LOG of the others: what the leader knows they hold)");
                t
            },
        );
    }
}

fn keys_text(k: &KeysView) -> String {
    let wrap = match k.wrap.as_str() {
        "operator" => format!("wrapped by the operator key {}", k.fingerprint),
        _ => format!(
            "wrapped by a key beside the data ({}): pass --key-file to keep it elsewhere",
            k.fingerprint
        ),
    };
    let mut t = format!(
        "data keys (AES-256-GCM), {wrap}\n{:<4} {:<10} STATE",
        "ID", "MADE"
    );
    for key in &k.keys {
        let _ = write!(
            t,
            "\n{:<4} {:<10} {}",
            key.id,
            age(now_ms(), key.created_ms),
            if key.active {
                "active (seals new values)"
            } else {
                "reads old values"
            }
        );
    }
    if let Some(census) = &k.census {
        let _ = write!(t, "\nsealed by each key:");
        for (id, n) in census {
            if *id == 0 {
                let _ = write!(t, "\n  not sealed: {n}");
            } else {
                let _ = write!(t, "\n  key {id}: {n}");
            }
        }
    }
    if let Some(r) = &k.rewrap {
        let _ = write!(
            t,
            "\nrewrap {}: {} looked at, {} re-encrypted",
            if r.finished { "finished" } else { "under way" },
            r.seen,
            r.resealed
        );
    }
    t
}
