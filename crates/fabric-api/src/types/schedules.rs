//! The JSON shapes of `/api/v1/schedules`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::NewTask;

/// A schedule to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSchedule {
    /// Unique: 1 to 64 of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// 5 cron fields, or 6 with seconds first.
    pub cron: String,
    /// An IANA time zone (default `UTC`).
    pub tz: Option<String>,
    /// `skip` (default), `queue` or `allow`: what a run does while the
    /// previous one is unfinished.
    pub overlap: Option<String>,
    /// `one` (default) or `none`: runs missed while the dispatcher was
    /// down.
    pub catch_up: Option<String>,
    /// What each run submits (no `trace`, `after` or `input_from`: each
    /// run gets its own trace id).
    pub task: NewTask,
}

/// A schedule and its latest runs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleJson {
    /// Its name.
    pub name: String,
    /// Its expression.
    pub cron: String,
    /// Its zone.
    pub tz: String,
    /// `skip`, `queue` or `allow`.
    pub overlap: String,
    /// `one` or `none`.
    pub catch_up: String,
    /// Paused: no runs until resumed.
    pub paused: bool,
    /// The next planned time, ms since the epoch.
    pub next_ms: Option<u64>,
    /// The latest runs, oldest first (a list shows only the last).
    pub runs: Vec<ScheduleRunJson>,
}

/// One planned time and what became of it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleRunJson {
    /// The planned time, ms since the epoch.
    pub planned_ms: u64,
    /// The task it submitted.
    pub task: Option<String>,
    /// The job it submitted (a job file's schedule).
    pub job: Option<String>,
    /// That task's state or final status.
    pub status: Option<String>,
    /// Why it did not run, or that it caught up.
    pub note: Option<String>,
}

impl From<&fabric_proto::ScheduleRecord> for ScheduleJson {
    fn from(r: &fabric_proto::ScheduleRecord) -> Self {
        Self {
            name: r.spec.name.clone(),
            cron: r.spec.cron.clone(),
            tz: r.spec.tz.clone(),
            overlap: r.spec.overlap.to_string(),
            catch_up: r.spec.catch_up.to_string(),
            paused: r.paused,
            next_ms: r.next_ms,
            runs: r
                .runs
                .iter()
                .map(|x| ScheduleRunJson {
                    planned_ms: x.planned_ms,
                    task: x.task.map(|t| t.to_string()),
                    job: x.job.map(|j| j.to_string()),
                    status: x.status.clone(),
                    note: x.note.clone(),
                })
                .collect(),
        }
    }
}
