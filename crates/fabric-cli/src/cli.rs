//! Flags and subcommands, as clap parses them (flags and `FABRIC_*`
//! environment variables land in the same fields). Merging in the
//! `--config` file happens in `config`; validation that needs more than a
//! value parser happens there or in each command.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::units;

mod admin;

pub(crate) use admin::{TokenCommand, WorkerRemoveArgs, WorkersArgs, WorkersCommand};

/// Fabric: run untrusted work, sandboxed, across the machines of a LAN.
#[derive(Debug, Parser)]
#[command(name = "fabric", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Examples:\n  fabric demo                                  # a local cluster runs the example jobs\n  fabric exec job.wasm --input data.txt -- --top 5\n  fabric up                                    # dispatcher + 2 workers on this machine\n  fabric submit job.wasm --input data.txt --wait\n\nLogging: -v for info, -vv for debug, or FABRIC_LOG=<filter>."
)]
pub(crate) struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Cluster profile: where the dispatcher is and which keys to use
    /// [default: ~/.config/fabric/cluster.toml].
    #[arg(long, env = "FABRIC_CLUSTER", value_name = "FILE", global = true)]
    pub cluster: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a wasm32-wasip1 module locally, in the same sandbox a worker uses.
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
    /// Queue a wasm task on the cluster; prints its id, or its result with --wait.
    #[command(after_help = SUBMIT_EXAMPLES)]
    Submit(SubmitArgs),
    /// Run an allow-listed native command on a worker, in its sandbox;
    /// output streams back, and fabric exits with the command's code.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
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
    /// Cancel a queued or running task.
    #[command(after_help = "Example:\n  fabric cancel 0190c7a2-3b4c-7d5e-8f60-123456789abc")]
    Cancel(IdArgs),
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
}

const UP_EXAMPLES: &str = "\
Examples:
  fabric up                       # dispatcher + 2 workers on 127.0.0.1:7070
  fabric up --workers 4 --data-dir /var/lib/fabric
  fabric submit job.wasm --wait   # in another terminal: the profile is written for you

It writes the cluster profile (see --cluster) and <data-dir>/join-token, prints
`ready` when serving, and stops cleanly on Ctrl-C or SIGTERM.";

const DISPATCHER_EXAMPLES: &str = "\
Examples:
  fabric dispatcher --listen 0.0.0.0:7070 --data-dir /var/lib/fabric
  fabric dispatcher --no-mdns --config /etc/fabric/dispatcher.toml

Workers on other machines join with the token printed at start (also in
<data-dir>/join-token; `fabric token create` mints more). Configuration comes
from flags, then FABRIC_* environment variables, then the --config TOML file
(keys as the long flag names with `_`, e.g. listen = \"0.0.0.0:7070\").";

const WORKER_EXAMPLES: &str = "\
Examples:
  fabric worker --join fabric1.AbC...            # find the dispatcher by mDNS
  fabric worker --join fabric1.AbC... --dispatcher 192.168.1.10:7070 --slots 8
  fabric worker --dispatcher-key <hex> --dispatcher 10.0.0.5:7070   # key already trusted

SIGTERM or Ctrl-C drains: running tasks finish and report before it exits.";

const SUBMIT_EXAMPLES: &str = "\
Examples:
  fabric submit wordfreq.wasm --input book.txt -- --top 5
  fabric submit primes.wasm --input req.json --wait --json
  fabric submit job.wasm --priority high --retries 3 --timeout 10s

With --wait the exit code follows `fabric exec`: the task's own code, or 124
timed out, 125 fuel exhausted, 126 memory exceeded, 127 trapped, 2 rejected.";

/// Flags of the commands that run a dispatcher.
#[derive(Debug, Args)]
pub(crate) struct ServeOpts {
    /// Data directory: keys, the sled store, the join token
    /// [default: $XDG_DATA_HOME/fabric or ~/.local/share/fabric].
    #[arg(long, env = "FABRIC_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// QUIC address to listen on.
    #[arg(long, env = "FABRIC_LISTEN", value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Announce on mDNS on this interface (`all`, `loopback` or a name).
    #[arg(long, env = "FABRIC_MDNS_INTERFACE", value_name = "IFACE")]
    pub mdns_interface: Option<String>,
    /// Do not announce on mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Worker heartbeat interval; a worker silent for 3 of these is dead.
    #[arg(long, env = "FABRIC_HEARTBEAT", value_name = "DUR", value_parser = units::parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Most tasks waiting in the queue; a submit beyond it is refused
    /// ("the queue is full") [default: 100000].
    #[arg(long, env = "FABRIC_MAX_QUEUED", value_name = "N")]
    pub max_queued: Option<usize>,
    /// Overwrite the cluster profile even when the dispatcher it names is
    /// still serving.
    #[arg(long)]
    pub replace_profile: bool,
    /// Trust this worker key without a join token (repeatable; hex, as
    /// `fabric worker` logs it at start).
    #[arg(long = "worker-key", value_name = "HEX")]
    pub worker_keys: Vec<String>,
    /// Most task slots a worker may claim; more is clamped (and logged)
    /// [default: 256].
    #[arg(long, env = "FABRIC_MAX_WORKER_SLOTS", value_name = "N")]
    pub max_worker_slots: Option<u32>,
    /// Most memory a worker may offer; more is clamped (and logged)
    /// [default: 1TiB].
    #[arg(long, env = "FABRIC_MAX_WORKER_MEMORY", value_name = "SIZE", value_parser = units::parse_size)]
    pub max_worker_memory: Option<u64>,
    /// Newest events kept in the event log [default: 100000].
    #[arg(long, env = "FABRIC_KEEP_EVENTS", value_name = "N")]
    pub keep_events: Option<usize>,
    /// Events older than this are removed [default: 7d].
    #[arg(long, env = "FABRIC_EVENT_RETENTION", value_name = "DUR", value_parser = units::parse_duration)]
    pub event_retention: Option<Duration>,
    /// Finished tasks (record and result) are removed this long after they
    /// finished [default: 7d].
    #[arg(long, env = "FABRIC_RESULT_RETENTION", value_name = "DUR", value_parser = units::parse_duration)]
    pub result_retention: Option<Duration>,
    /// Dead letters are removed this long after they failed [default: 30d].
    #[arg(long, env = "FABRIC_DEAD_LETTER_RETENTION", value_name = "DUR", value_parser = units::parse_duration)]
    pub dead_letter_retention: Option<Duration>,
    /// Modules no unfinished task uses are removed after this long
    /// [default: 7d].
    #[arg(long, env = "FABRIC_BLOB_RETENTION", value_name = "DUR", value_parser = units::parse_duration)]
    pub blob_retention: Option<Duration>,
    /// TOML file with defaults for these flags.
    #[arg(long, env = "FABRIC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DispatcherArgs {
    #[command(flatten)]
    pub serve: ServeOpts,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub serve: ServeOpts,
    /// Local workers to run.
    #[arg(long, env = "FABRIC_WORKERS", value_name = "N")]
    pub workers: Option<u32>,
    /// Task slots per local worker.
    #[arg(long, env = "FABRIC_SLOTS", value_name = "N")]
    pub slots: Option<u32>,
    /// Run native tasks of this program (repeatable; a name on PATH or a
    /// path, resolved at start). Without any, native tasks are off.
    #[arg(long = "allow", value_name = "PROGRAM")]
    pub allow: Vec<String>,
    /// Give native tasks the host's network (default: none).
    #[arg(long)]
    pub allow_network: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Join token from the dispatcher (`fabric token create`).
    #[arg(long, env = "FABRIC_JOIN", value_name = "TOKEN")]
    pub join: Option<String>,
    /// Dispatcher address; without it the worker looks on mDNS.
    #[arg(long, env = "FABRIC_DISPATCHER", value_name = "ADDR")]
    pub dispatcher: Option<String>,
    /// The dispatcher's public key, when not joining with a token.
    #[arg(long, env = "FABRIC_DISPATCHER_KEY", value_name = "HEX")]
    pub dispatcher_key: Option<String>,
    /// Tasks to run at once [default: number of CPUs].
    #[arg(long, env = "FABRIC_SLOTS", value_name = "N")]
    pub slots: Option<u32>,
    /// Memory offered to tasks in all [default: half of this machine's RAM].
    #[arg(long, env = "FABRIC_MEMORY_TOTAL", value_name = "SIZE", value_parser = units::parse_size)]
    pub memory_total: Option<u64>,
    /// Name shown in `fabric workers` [default: host name].
    #[arg(long, env = "FABRIC_NAME")]
    pub name: Option<String>,
    /// Label (repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Run native tasks of this program (repeatable; a name on PATH or a
    /// path, resolved at start). Without any, native tasks are off.
    #[arg(long = "allow", value_name = "PROGRAM")]
    pub allow: Vec<String>,
    /// Give native tasks the host's network (default: none).
    #[arg(long)]
    pub allow_network: bool,
    /// Data directory (key, compiled-module cache).
    #[arg(long, env = "FABRIC_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Browse mDNS on this interface (`all`, `loopback` or a name).
    #[arg(long, env = "FABRIC_MDNS_INTERFACE", value_name = "IFACE")]
    pub mdns_interface: Option<String>,
    /// TOML file with defaults for these flags.
    #[arg(long, env = "FABRIC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// Do not print the summary line on stderr.
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
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The module to run (a wasm32-wasip1 binary).
    #[arg(value_name = "MODULE.wasm")]
    pub module: PathBuf,
    #[command(flatten)]
    pub task: TaskOpts,
    /// high, normal or low.
    #[arg(long, default_value = "normal")]
    pub priority: String,
    /// Retries after a failed attempt (exponential backoff).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Wait for the result and print it (exit code as `fabric exec`).
    #[arg(long)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not print the summary line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Arguments for the task, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub task: TaskOpts,
    /// high, normal or low.
    #[arg(long, default_value = "normal")]
    pub priority: String,
    /// Retries after a failed attempt (exponential backoff).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// A file or directory placed in the task's dir under the same relative
    /// path (repeatable; uploaded once by content).
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Bring back the files matching GLOB (relative to the task's dir;
    /// repeatable) into the current directory when the command ends.
    #[arg(long = "output", value_name = "GLOB")]
    pub outputs: Vec<String>,
    /// Queue it and print its id instead of following it.
    #[arg(long)]
    pub detach: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not print the summary line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// The program (as a worker allows it: `cc`, or its path) and its
    /// arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
    pub command: Vec<String>,
}

const RUN_EXAMPLES: &str = "\
Examples:
  fabric run -- uname -a
  fabric run --file hello.c --output hello.o -- cc -c hello.c -o hello.o
  fabric run --timeout 5m --memory 2GiB --file src --output 'build/*.o' -- make -j4
  echo hello | fabric run --input - -- tr a-z A-Z
  fabric run --detach --json -- sleep 30

Workers run only the programs their operator allowed (`fabric worker
--allow cc`), inside a process sandbox (no network, a minimal root, the
task's scratch dir as /work). --fuel does not apply to native commands.

Exit codes: the command's own exit code; 124 timed out, 126 memory
exceeded, 2 refused (no worker allows the program) or bad usage, 1 any
other failure.";

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
