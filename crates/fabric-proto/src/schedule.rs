//! Schedules: a task submitted again and again at the times of a cron
//! expression in a time zone (`fabric schedule add`), with a policy for a
//! run that would overlap the previous one and for runs missed while the
//! dispatcher was down.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{TaskId, TaskSpec};

/// Most schedules one dispatcher keeps.
pub const MAX_SCHEDULES: usize = 1_000;
/// Runs a schedule remembers (newest kept).
pub const MAX_SCHEDULE_HISTORY: usize = 50;
/// The longest schedule name.
pub const MAX_SCHEDULE_NAME: usize = 64;

/// What a run does while the previous run of its schedule is unfinished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// No run this time (the default).
    #[default]
    Skip,
    /// The run waits for the previous one to succeed (`--after` it).
    Queue,
    /// Both run.
    Allow,
}

/// What a schedule does with runs missed while the dispatcher was down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUpPolicy {
    /// One run for any number missed (the default).
    #[default]
    One,
    /// None.
    None,
}

macro_rules! words {
    ($t:ty, $what:literal, $($v:ident => $w:literal),+) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$v => $w),+ })
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($w => Ok(Self::$v),)+
                    other => Err(format!(concat!($what, " {:?}: expected {}"), other, [$($w),+].join(", "))),
                }
            }
        }
    };
}

words!(Overlap, "--overlap", Skip => "skip", Queue => "queue", Allow => "allow");
words!(CatchUpPolicy, "--catch-up", One => "one", None => "none");

/// A schedule as added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// Unique: 1 to [`MAX_SCHEDULE_NAME`] of `A-Z a-z 0-9 _ -`.
    pub name: String,
    /// 5 fields, or 6 with seconds first.
    pub cron: String,
    /// An IANA zone (`UTC` by default).
    pub tz: String,
    /// See [`Overlap`].
    #[serde(default)]
    pub overlap: Overlap,
    /// See [`CatchUpPolicy`].
    #[serde(default)]
    pub catch_up: CatchUpPolicy,
    /// What each run submits (its trace id is set per run); exactly one of
    /// `task` and `job`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSpec>,
    /// A job each run submits (named after the schedule and the planned
    /// time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::JobSpec>,
}

/// One planned time of a schedule, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRun {
    /// The planned time (ms since the epoch).
    pub planned_ms: u64,
    /// The task it submitted, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    /// The job it submitted, if it ran a job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::JobId>,
    /// Why it did not run, or what it caught up on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The task's state or final status when looked at (views only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A stored schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    /// As added.
    pub spec: ScheduleSpec,
    /// Paused: no runs until resumed.
    #[serde(default)]
    pub paused: bool,
    /// The next planned time (ms since the epoch).
    pub next_ms: Option<u64>,
    /// The latest runs, oldest first (at most [`MAX_SCHEDULE_HISTORY`]).
    #[serde(default)]
    pub runs: Vec<ScheduleRun>,
    /// Added at (ms since the epoch).
    pub created_ms: u64,
}

impl ScheduleRecord {
    /// Remembers a run, forgetting the oldest past the bound.
    pub fn remember(&mut self, run: ScheduleRun) {
        self.runs.push(run);
        let over = self.runs.len().saturating_sub(MAX_SCHEDULE_HISTORY);
        self.runs.drain(..over);
    }
}

/// What is done to a schedule by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleAction {
    /// No runs until resumed.
    Pause,
    /// Runs again from the next planned time.
    Resume,
    /// Gone (its past runs' tasks stay).
    Remove,
    /// One run now, whatever the plan (the overlap policy still holds).
    RunNow,
}

/// Checks a schedule's name.
pub fn check_schedule_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SCHEDULE_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "schedule name {name:?}: 1 to {MAX_SCHEDULE_NAME} of A-Z a-z 0-9 _ -"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_and_runs_are_bounded() {
        assert_eq!("queue".parse::<Overlap>().unwrap(), Overlap::Queue);
        assert_eq!(CatchUpPolicy::None.to_string(), "none");
        let e = "sometimes".parse::<Overlap>().unwrap_err();
        assert!(e.contains("expected skip, queue, allow"), "{e}");
        assert!(check_schedule_name("nightly-backup_2").is_ok());
        assert!(check_schedule_name("no spaces").is_err());
        let mut rec = ScheduleRecord {
            spec: ScheduleSpec {
                name: "s".into(),
                cron: "* * * * *".into(),
                tz: "UTC".into(),
                overlap: Overlap::Skip,
                catch_up: CatchUpPolicy::One,
                task: Some(TaskSpec::wasm(crate::Sha256::of(b"m"))),
                job: None,
            },
            paused: false,
            next_ms: None,
            runs: Vec::new(),
            created_ms: 0,
        };
        for i in 0..(MAX_SCHEDULE_HISTORY as u64 + 5) {
            rec.remember(ScheduleRun {
                planned_ms: i,
                task: None,
                job: None,
                note: None,
                status: None,
            });
        }
        assert_eq!(rec.runs.len(), MAX_SCHEDULE_HISTORY);
        assert_eq!(rec.runs[0].planned_ms, 5, "the oldest went first");
    }
}
