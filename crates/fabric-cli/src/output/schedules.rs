//! Schedules: the list with next runs and last statuses, one schedule's
//! latest runs, and what a change did. JSON is the schedule record with
//! each run's status.

use fabric_proto::{ScheduleAction, ScheduleRecord};

use super::Output;

/// A time in ms since the epoch, as RFC 3339 UTC to the second.
fn at(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)).map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn last_status(rec: &ScheduleRecord) -> String {
    rec.runs.last().map_or_else(
        || "-".to_owned(),
        |r| {
            r.status
                .clone()
                .or_else(|| r.note.clone())
                .unwrap_or_else(|| "-".to_owned())
        },
    )
}

impl Output {
    /// Every schedule.
    pub(crate) fn schedules(self, all: &[ScheduleRecord]) {
        self.emit(
            || all,
            || {
                if all.is_empty() {
                    return "no schedules (fabric schedule add --help)".to_owned();
                }
                let mut out = format!(
                    "{:<20} {:<16} {:<14} {:<22} {:<8} LAST\n",
                    "NAME", "CRON", "TZ", "NEXT", "STATE"
                );
                for r in all {
                    out.push_str(&format!(
                        "{:<20} {:<16} {:<14} {:<22} {:<8} {}\n",
                        r.spec.name,
                        r.spec.cron,
                        r.spec.tz,
                        r.next_ms.map_or_else(|| "-".to_owned(), at),
                        if r.paused { "paused" } else { "active" },
                        last_status(r)
                    ));
                }
                out.trim_end().to_owned()
            },
        );
    }

    /// One schedule and its latest runs.
    pub(crate) fn schedule(self, r: &ScheduleRecord) {
        self.emit(
            || r,
            || {
                let mut out = format!(
                    "schedule {}  {} ({})  overlap {}  catch-up {}  {}\n  next {}\n",
                    r.spec.name,
                    r.spec.cron,
                    r.spec.tz,
                    r.spec.overlap,
                    r.spec.catch_up,
                    if r.paused { "paused" } else { "active" },
                    r.next_ms.map_or_else(|| "-".to_owned(), at)
                );
                for run in r.runs.iter().rev() {
                    out.push_str(&format!(
                        "  {}  {}  {}{}\n",
                        at(run.planned_ms),
                        run.task.map_or_else(
                            || run.job.map_or_else(|| "-".to_owned(), |j| j.to_string()),
                            |t| t.to_string()
                        ),
                        run.status.as_deref().unwrap_or("-"),
                        run.note
                            .as_deref()
                            .map(|n| format!("  ({n})"))
                            .unwrap_or_default()
                    ));
                }
                out.trim_end().to_owned()
            },
        );
    }

    /// A schedule was added: its next run.
    pub(crate) fn schedule_added(self, r: &ScheduleRecord) {
        self.emit(
            || r,
            || {
                format!(
                    "schedule {} added; next run {}",
                    r.spec.name,
                    r.next_ms.map_or_else(|| "-".to_owned(), at)
                )
            },
        );
    }

    /// A pause, resume, removal or run now.
    pub(crate) fn schedule_changed(self, r: &ScheduleRecord, action: ScheduleAction) {
        self.emit(
            || r,
            || match action {
                ScheduleAction::Pause => format!("schedule {} paused", r.spec.name),
                ScheduleAction::Resume => format!(
                    "schedule {} resumed; next run {}",
                    r.spec.name,
                    r.next_ms.map_or_else(|| "-".to_owned(), at)
                ),
                ScheduleAction::Remove => format!("schedule {} removed", r.spec.name),
                ScheduleAction::RunNow => {
                    let last = r.runs.last();
                    match (last.and_then(|x| x.task), last.and_then(|x| x.job)) {
                        (Some(t), _) => format!("schedule {}: run now as task {t}", r.spec.name),
                        (None, Some(j)) => format!("schedule {}: run now as job {j}", r.spec.name),
                        (None, None) => {
                            let why = r
                                .runs
                                .last()
                                .and_then(|x| x.note.clone())
                                .unwrap_or_default();
                            format!("schedule {}: no run now ({why})", r.spec.name)
                        }
                    }
                }
            },
        );
    }
}
