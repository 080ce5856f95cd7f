//! Flags of `cancel` and `retry`: one task by id, or many at once.

use std::time::Duration;

use clap::Args;

use crate::units;

pub(super) const CANCEL_EXAMPLES: &str = "\
Examples:
  fabric cancel 0190c7a2-3b4c-7d5e-8f60-123456789abc
  fabric cancel --state queued                     # every queued task
  fabric cancel --state running --older-than 2h    # running for over 2 hours
  fabric cancel --job job-0190c7a2-3b4c-7d5e-8f60-123456789abc   # an --each job";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "state", "job"]))]
pub(crate) struct CancelArgs {
    /// The task id, or any unique start of it.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Cancel every task in this state instead: queued, scheduled,
    /// waiting or running.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// Cancel every unfinished task of this job instead (the id an
    /// `--each` submit printed).
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,
    /// With --state: only tasks submitted longer ago than this (e.g. 30m).
    #[arg(long, value_name = "DUR", requires = "state", value_parser = units::parse_duration)]
    pub older_than: Option<Duration>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) const RETRY_EXAMPLES: &str = "\
Examples:
  fabric tasks --state dead_letter
  fabric retry 0190c7a2
  fabric wait \"$(fabric retry 0190c7a2)\"
  fabric retry --dead-letters                      # every dead letter
  fabric retry --dead-letters --job job-0190c7a2-3b4c-7d5e-8f60-123456789abc";

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["id", "dead_letters"]))]
pub(crate) struct RetryArgs {
    /// The dead letter's id, or any unique start of it.
    #[arg(value_name = "ID")]
    pub id: Option<String>,
    /// Retry every dead letter instead.
    #[arg(long)]
    pub dead_letters: bool,
    /// With --dead-letters: only those of this job.
    #[arg(long, value_name = "JOB", requires = "dead_letters")]
    pub job: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
