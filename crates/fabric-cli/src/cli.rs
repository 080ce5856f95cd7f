//! Flags and subcommands, as clap parses them (flags and `FABRIC_*`
//! environment variables land in the same fields). Merging in the
//! `--config` file happens in `config`; validation that needs more than a
//! value parser happens there or in each command.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::units;

mod admin;
mod task;

pub(crate) use admin::{TokenCommand, WorkerRemoveArgs, WorkersArgs, WorkersCommand};
use task::{EXEC_EXAMPLES, RUN_EXAMPLES};
pub(crate) use task::{ExecArgs, RunArgs, SubmitArgs, TaskOpts};

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
    /// Queue a dead letter again, as a new task (admin only); prints the
    /// new task's id.
    #[command(
        after_help = "Examples:\n  fabric tasks --state dead_letter\n  fabric retry 0190c7a2\n  fabric wait \"$(fabric retry 0190c7a2)\""
    )]
    Retry(IdArgs),
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
    /// A live terminal dashboard: workers, tasks and the cluster's events
    /// (over the REST API the cluster profile names). q quits.
    #[command(
        after_help = "Keys: tab or 1-3 switch views, j/k or arrows move, q, Esc or Ctrl-C quit.\n\nExample:\n  fabric top"
    )]
    Top,
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
    /// Serve the REST API on this address (`127.0.0.1:0`: any free port)
    /// [default: 127.0.0.1:7080].
    #[arg(long, env = "FABRIC_API", value_name = "ADDR")]
    pub api: Option<std::net::SocketAddr>,
    /// Do not serve the REST API.
    #[arg(long, conflicts_with = "api")]
    pub no_api: bool,
    /// REST requests per second each token may make (bursts of twice
    /// that); over it the API answers 429 with Retry-After [default: 100].
    #[arg(long, env = "FABRIC_API_RATE_LIMIT", value_name = "N")]
    pub api_rate_limit: Option<u32>,
    /// Let browsers on this origin call the REST API (CORS; repeatable,
    /// e.g. `https://ops.example.com`).
    #[arg(long = "api-cors", value_name = "ORIGIN")]
    pub api_cors: Vec<String>,
    /// Most REST connections open at once; more wait to be accepted
    /// [default: 1024, or a quarter of the open-file limit when less].
    #[arg(long, env = "FABRIC_API_MAX_CONNECTIONS", value_name = "N")]
    pub api_max_connections: Option<usize>,
    /// Most REST requests one token may have in flight; more are answered
    /// 429 [default: 32].
    #[arg(long, env = "FABRIC_API_TOKEN_REQUESTS", value_name = "N")]
    pub api_token_requests: Option<u32>,
    /// Time a REST connection has to send a request's head, and the
    /// longest it may sit idle between requests [default: 5s].
    #[arg(long, env = "FABRIC_API_HEADER_TIMEOUT", value_name = "DUR", value_parser = units::parse_duration)]
    pub api_header_timeout: Option<Duration>,
    /// Time a REST request's body has to arrive whole; past it the answer
    /// is 408 and the connection closes [default: 60s].
    #[arg(long, env = "FABRIC_API_BODY_TIMEOUT", value_name = "DUR", value_parser = units::parse_duration)]
    pub api_body_timeout: Option<Duration>,
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
    #[command(flatten)]
    pub native: NativeOpts,
}

/// How a worker runs native commands (`fabric up` and `fabric worker`).
#[derive(Debug, Args)]
pub(crate) struct NativeOpts {
    /// Run native tasks of this program (repeatable; a name on PATH or a
    /// path, resolved at start). Without any, native tasks are off.
    #[arg(long = "allow", value_name = "PROGRAM")]
    pub allow: Vec<String>,
    /// Give native tasks the host's network (default: none).
    #[arg(long)]
    pub allow_network: bool,
    /// Let native tasks run files they wrote in /work and /tmp (builds
    /// that run what they make; default: those are mounted noexec).
    /// `fabric workers` lists such workers with the label `exec-in-work`.
    #[arg(long)]
    pub allow_exec_in_work: bool,
    /// The most disk (/work and /tmp) one native task gets on this worker,
    /// whatever it asks for with --disk [default: 4GiB].
    #[arg(long, env = "FABRIC_MAX_TASK_DISK", value_name = "SIZE", value_parser = units::parse_size)]
    pub max_task_disk: Option<u64>,
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
    #[command(flatten)]
    pub native: NativeOpts,
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
