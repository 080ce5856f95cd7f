//! Flags of `fabric schedule`: a task submitted at the times of a cron
//! expression.

use clap::{Args, Subcommand};

pub(super) const SCHEDULE_EXAMPLES: &str = "\
Examples:
  fabric schedule add nightly --cron '0 3 * * *' --tz Europe/Berlin -- run -- sh -c 'backup'
  fabric schedule add heartbeat --cron '*/2 * * * * *' -- submit ping.wasm --input ping.json
  fabric schedule add counts --cron '0 * * * *' --job examples/jobs/wordcount.toml
  fabric schedule list
  fabric schedule show nightly
  fabric schedule pause nightly && fabric schedule resume nightly
  fabric schedule run-now nightly
  fabric schedule remove nightly

EXPR has 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds
first). --overlap says what a run does while the previous run is unfinished
(skip, queue: after it, allow); --catch-up what happens to runs missed while
the dispatcher was down (one: a single run, none). See the README's
\"Schedules\".";

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Add a schedule (admin only): after `--`, what `fabric submit` or
    /// `fabric run` would take.
    #[command(after_help = SCHEDULE_EXAMPLES)]
    Add(ScheduleAddArgs),
    /// List schedules with their next run and last status.
    List(ScheduleListArgs),
    /// Show a schedule's latest runs with their task ids and statuses.
    Show(ScheduleNameArgs),
    /// No runs until resumed.
    Pause(ScheduleNameArgs),
    /// Runs again from the next planned time (the paused ones are not
    /// caught up).
    Resume(ScheduleNameArgs),
    /// Remove a schedule (admin only); its past runs' tasks stay.
    Remove(ScheduleNameArgs),
    /// One run now, whatever the plan (the overlap policy still holds).
    RunNow(ScheduleNameArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ScheduleAddArgs {
    /// Its name: 1 to 64 of A-Z a-z 0-9 _ -.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// When: 5 cron fields, or 6 with seconds first.
    #[arg(long, value_name = "EXPR")]
    pub cron: String,
    /// The IANA time zone the expression is read in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub tz: String,
    /// While the previous run is unfinished: skip, queue or allow.
    #[arg(long, default_value = "skip")]
    pub overlap: String,
    /// Runs missed while the dispatcher was down: one or none.
    #[arg(long, default_value = "one")]
    pub catch_up: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Each run submits this job file (instead of what follows `--`).
    #[arg(long, value_name = "FILE.toml", conflicts_with = "what")]
    pub job: Option<std::path::PathBuf>,
    /// `submit MODULE [flags] [-- ARGS]` or `run [flags] -- PROGRAM ARGS`.
    #[arg(
        last = true,
        value_name = "SUBMIT|RUN",
        required_unless_present = "job"
    )]
    pub what: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ScheduleNameArgs {
    /// The schedule's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScheduleListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
