//! Flags and subcommands, as clap parses them (flags and `FABRIC_*`
//! environment variables land in the same fields). Merging in the
//! `--config` file happens in `config`; validation that needs more than a
//! value parser happens there or in each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::units;

mod admin;
mod at_rest;
mod author;
mod bulk;
mod job;
mod schedule;
mod serve;
mod task;

pub(crate) use admin::{TokenCommand, WorkerRemoveArgs, WorkersArgs, WorkersCommand};
use at_rest::ADMIN_EXAMPLES;
pub(crate) use at_rest::{AdminCommand, BackupArgs, MembersChange, RotateArgs};
use author::{COMPLETIONS_EXAMPLES, MAN_EXAMPLES, NEW_EXAMPLES};
pub(crate) use author::{CompletionsArgs, ManArgs, NewArgs};
use bulk::{CANCEL_EXAMPLES, RETRY_EXAMPLES};
pub(crate) use bulk::{CancelArgs, RetryArgs};
use job::JOB_EXAMPLES;
pub(crate) use job::JobCommand;
use schedule::SCHEDULE_EXAMPLES;
pub(crate) use schedule::{ScheduleAddArgs, ScheduleCommand};
use serve::{DISPATCHER_EXAMPLES, UP_EXAMPLES, WORKER_EXAMPLES};
pub(crate) use serve::{DispatcherArgs, NativeOpts, ServeOpts, UpArgs, WorkerArgs};
use task::{EXEC_EXAMPLES, RUN_EXAMPLES, SUBMIT_EXAMPLES};
pub(crate) use task::{ExecArgs, QueueOpts, RunArgs, SubmitArgs, TaskOpts};

/// Fabric: run untrusted work, sandboxed, across the machines of a LAN.
#[derive(Debug, Parser)]
#[command(name = "fabric", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  fabric demo                                  # a local cluster runs the example jobs\n  fabric exec job.wasm --input data.txt -- --top 5\n  fabric up                                    # dispatcher + 2 workers on this machine\n  fabric submit job.wasm --input data.txt --wait\n\nLogging: -v for info, -vv for debug, or FABRIC_LOG=<filter>; --log-format json for one JSON object per line."
)]
pub(crate) struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines as text, or as one JSON object per line (with the span's
    /// fields, a task's trace id among them) for a log collector.
    #[arg(long, env = "FABRIC_LOG_FORMAT", value_name = "FORMAT", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Cluster profile: where the dispatcher is and which keys to use
    /// [default: ~/.config/fabric/cluster.toml].
    #[arg(long, env = "FABRIC_CLUSTER", value_name = "FILE", global = true)]
    pub cluster: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a new task crate (Rust, for wasm32-wasip1, on the guest SDK).
    #[command(after_help = NEW_EXAMPLES)]
    New(NewArgs),
    /// Run a wasm32-wasip1 module (or build a crate dir and run it)
    /// locally, in the same sandbox a worker uses.
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Start an embedded cluster in a temp dir, run the example jobs, exit.
    #[command(
        after_help = "Examples:\n  fabric demo\n  fabric demo --workers 3 --json\n  fabric demo --export examples && cd examples && fabric up"
    )]
    Demo(DemoArgs),
    /// Run a dispatcher and N local workers in one process.
    #[command(after_help = UP_EXAMPLES)]
    Up(UpArgs),
    /// Run a dispatcher (for a cluster across machines).
    #[command(after_help = DISPATCHER_EXAMPLES)]
    Dispatcher(DispatcherArgs),
    /// Run a worker that joins a dispatcher.
    #[command(after_help = WORKER_EXAMPLES)]
    Worker(WorkerArgs),
    /// Manage join tokens (admin only).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The data at rest, the audit trail and the group of dispatchers:
    /// operator and data keys, rotation, backups and restores, who did
    /// what, members (admin only).
    #[command(subcommand, after_help = ADMIN_EXAMPLES)]
    Admin(AdminCommand),
    /// Queue a wasm task (a module, or a crate dir built first) on the
    /// cluster; prints its id, or its result with --wait.
    #[command(after_help = SUBMIT_EXAMPLES)]
    Submit(SubmitArgs),
    /// Run an allow-listed native command on a worker, in its sandbox;
    /// output streams back, and fabric exits with the command's code.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Jobs: a DAG of steps from a job file, run, followed, cancelled and
    /// rescued as one.
    #[command(subcommand, after_help = JOB_EXAMPLES)]
    Job(JobCommand),
    /// Schedules: a task submitted at the times of a cron expression, in a
    /// time zone.
    #[command(subcommand, after_help = SCHEDULE_EXAMPLES)]
    Schedule(ScheduleCommand),
    /// Show a task's state.
    #[command(after_help = "Example:\n  fabric status 0190c7a2-3b4c-7d5e-8f60-123456789abc --json")]
    Status(IdArgs),
    /// Show a task's result (its output when finished).
    #[command(
        after_help = "Example:\n  fabric result 0190c7a2-3b4c-7d5e-8f60-123456789abc > out.txt"
    )]
    Result(ResultArgs),
    /// Wait for a task to finish and print its result (exit code as `fabric exec`).
    #[command(after_help = WAIT_EXAMPLES)]
    Wait(WaitArgs),
    /// Cancel a queued or running task, or every one in a state.
    #[command(after_help = CANCEL_EXAMPLES)]
    Cancel(CancelArgs),
    /// Queue a dead letter again, as a new task (admin only); prints the
    /// new task's id. --dead-letters retries them all.
    #[command(after_help = RETRY_EXAMPLES)]
    Retry(RetryArgs),
    /// List tasks, newest first.
    #[command(
        after_help = "Examples:\n  fabric tasks\n  fabric tasks --state queued --limit 100 --json\n  fabric tasks --state timed_out\n  fabric tasks --state dead_letter"
    )]
    Tasks(TasksArgs),
    /// List the workers registered with the dispatcher, or remove one.
    #[command(
        after_help = "Examples:\n  fabric workers --json\n  fabric workers remove 3f2a9c01b7d4",
        args_conflicts_with_subcommands = true
    )]
    Workers(WorkersArgs),
    /// A live terminal dashboard: workers, tasks, the cluster's events and
    /// jobs
    /// (over the REST API the cluster profile names). q quits.
    #[command(
        after_help = "Keys: tab or 1-4 switch views, j/k or arrows move, q, Esc or Ctrl-C quit.\n\nExample:\n  fabric top"
    )]
    Top,
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print a man page (roff).
    #[command(after_help = MAN_EXAMPLES)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdArgs {
    /// The task id, or any unique start of it.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResultArgs {
    #[command(flatten)]
    pub id: IdArgs,
    /// Write a native task's output files (its `--output` globs) under DIR.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

const WAIT_EXAMPLES: &str = "\
Examples:
  fabric wait 0190c7a2-3b4c-7d5e-8f60      # any unique start of the id
  fabric wait 0190c7a2-3b4c-7d5e-8f60 --wait-timeout 30s --json

Exit codes: the task's own, as `fabric exec`; 3 when --wait-timeout passes
first (the task keeps running).";

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The task id, or any unique start of it.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Give up waiting after this long (the task keeps running); exit 3.
    #[arg(long, value_name = "DUR", value_parser = units::parse_duration)]
    pub wait_timeout: Option<std::time::Duration>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Print only the task's output: no summary or notes on stderr (the
    /// exit code tells how it ended).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TasksArgs {
    /// Only tasks in this state (queued, running, done, cancelled), with this
    /// final status (succeeded, failed, timed_out, ...), or dead_letter.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only tasks older than this id (paging).
    #[arg(long, value_name = "ID")]
    pub before: Option<String>,
    /// Only tasks with this correlation id (`--trace` of submit or run).
    #[arg(long, value_name = "ID", conflicts_with = "state")]
    pub trace: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Local workers.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
    /// Print one JSON object per job instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the demo's modules and inputs (wordfreq.wasm, book.txt, ...)
    /// into DIR instead of running them.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
}
