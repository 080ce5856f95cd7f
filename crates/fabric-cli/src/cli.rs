//! Flags and subcommands, as clap parses them. Validation that needs more
//! than a value parser happens in each command.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::units;

/// Fabric: run untrusted work, sandboxed, across the machines of a LAN.
#[derive(Debug, Parser)]
#[command(name = "fabric", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  fabric exec job.wasm --input data.txt -- --top 5\n  fabric exec job.wasm --fuel 1000000 --memory 64MiB --timeout 2s --json\n\nLogging: -v for info, -vv for debug, or FABRIC_LOG=<filter>."
)]
pub(crate) struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a wasm32-wasip1 module locally, in the same sandbox a worker uses.
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
}

const EXEC_EXAMPLES: &str = "\
Examples:
  fabric exec wordfreq.wasm --input book.txt -- --top 5
  echo '{\"limit\": 1000}' | fabric exec primes.wasm --input - --json
  fabric exec job.wasm --fuel 5000000 --memory 64MiB --timeout 1.5s --env MODE=fast

Exit codes: the task's own exit code when it exited; 124 timed out,
125 fuel exhausted, 126 memory exceeded, 127 trapped, 2 rejected or bad usage,
1 any other failure.";

/// Limits and inputs shared by every command that runs a task.
#[derive(Debug, Args)]
pub(crate) struct TaskOpts {
    /// File whose bytes become the task's stdin; `-` reads this process's stdin.
    #[arg(long, value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    /// Fuel budget (about one unit per wasm instruction).
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Memory limit, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub memory: Option<u64>,
    /// Wall-clock limit, e.g. 1.5s, 500ms, 2m.
    #[arg(long, value_name = "DUR", value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
    /// Bytes kept of each of stdout and stderr, e.g. 4MiB; the rest is cut.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub output_limit: Option<u64>,
    /// Environment variable for the task (repeatable). `K` alone passes this
    /// process's value of K. Nothing else is inherited.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The module to run (a wasm32-wasip1 binary).
    #[arg(value_name = "MODULE.wasm")]
    pub module: PathBuf,
    #[command(flatten)]
    pub task: TaskOpts,
    /// Give the task an empty scratch directory at /work, removed afterwards.
    #[arg(long)]
    pub scratch: bool,
    /// Print one JSON object with the outcome instead of the task's output.
    #[arg(long)]
    pub json: bool,
    /// Do not print the summary line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Data directory; compiled modules are cached under it [default:
    /// $XDG_DATA_HOME/fabric or ~/.local/share/fabric].
    #[arg(long, env = "FABRIC_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Do not read or write the compiled-module cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Arguments for the task, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}
