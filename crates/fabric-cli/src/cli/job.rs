//! Flags of `fabric job`: submit a job file, follow, list, cancel and
//! rescue jobs.

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub(super) const JOB_EXAMPLES: &str = "\
Examples:
  fabric job submit examples/jobs/wordcount/job.toml --wait
  fabric job status job-0190c7a2-3b4c-7d5e-8f60-123456789abc
  fabric job list
  fabric job cancel job-0190c7a2-3b4c-7d5e-8f60-123456789abc
  fabric job retry job-0190c7a2-3b4c-7d5e-8f60-123456789abc --wait   # rerun what failed

A job file is TOML: [[step]] tables, each with a name, a module (a .wasm
file or a crate dir, with bin) or a command (program and args), and any of
args, env, input, each, after, input_from, files, outputs, files_from,
require, priority, retries, timeout, memory, fuel, disk. See the README's
\"Job files\".";

#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Queue a job file's steps as one job; prints the job id (with
    /// --wait, follows it to the end).
    #[command(
        after_help = "Examples:\n  fabric job submit job.toml\n  fabric job submit examples/jobs/native-build/job.toml --wait"
    )]
    Submit(JobSubmitArgs),
    /// Show a job: each step with its tasks' states.
    #[command(
        after_help = "Example:\n  fabric job status job-0190c7a2-3b4c-7d5e-8f60-123456789abc --json"
    )]
    Status(JobIdArgs),
    /// List jobs, newest first.
    #[command(after_help = "Example:\n  fabric job list --limit 5")]
    List(JobListArgs),
    /// Cancel every unfinished task of a job.
    #[command(
        after_help = "Example:\n  fabric job cancel job-0190c7a2-3b4c-7d5e-8f60-123456789abc"
    )]
    Cancel(JobIdArgs),
    /// The rescue: rerun only the tasks of a finished job that did not
    /// succeed, and those they skipped (admin only).
    #[command(
        after_help = "Example:\n  fabric job retry job-0190c7a2-3b4c-7d5e-8f60-123456789abc --wait"
    )]
    Retry(JobRetryArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JobSubmitArgs {
    /// The job file (TOML; paths in it are relative to its directory).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Follow the job to its end: one progress bar, then a summary by
    /// step; exit 1 unless every task succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print only the job id.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JobIdArgs {
    /// The job id (`job-...`, as `fabric job submit` prints it).
    #[arg(value_name = "JOB")]
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JobRetryArgs {
    #[command(flatten)]
    pub job: JobIdArgs,
    /// Follow the job to its end after the rescue.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JobListArgs {
    /// At most this many.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
