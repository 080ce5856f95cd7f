//! Flags of the commands that serve: `up`, `dispatcher` and `worker`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::units;

pub(super) const UP_EXAMPLES: &str = "\
Examples:
  fabric up                       # dispatcher + 2 workers on 127.0.0.1:7070
  fabric up --workers 4 --data-dir /var/lib/fabric
  fabric submit job.wasm --wait   # in another terminal: the profile is written for you

It writes the cluster profile (see --cluster) and <data-dir>/join-token, prints
`ready` when serving, and stops cleanly on Ctrl-C or SIGTERM.";

pub(super) const DISPATCHER_EXAMPLES: &str = "\
Examples:
  fabric dispatcher --listen 0.0.0.0:7070 --data-dir /var/lib/fabric
  fabric dispatcher --no-mdns --config /etc/fabric/dispatcher.toml
  fabric dispatcher --listen 10.0.0.1:7070 --data-dir /var/lib/fabric \
      --peer KEY2@10.0.0.2:7070 --peer KEY3@10.0.0.3:7070    # one of three

Workers on other machines join with the token printed at start (also in
<data-dir>/join-token; `fabric token create` mints more). Configuration comes
from flags, then FABRIC_* environment variables, then the --config TOML file
(keys as the long flag names with `_`, e.g. listen = \"0.0.0.0:7070\").";

pub(super) const WORKER_EXAMPLES: &str = "\
Examples:
  fabric worker --join fabric1.AbC...            # find the dispatcher by mDNS
  fabric worker --join fabric1.AbC... --dispatcher 192.168.1.10:7070 --slots 8
  fabric worker --dispatcher-key <hex> --dispatcher 10.0.0.5:7070   # key already trusted

SIGTERM or Ctrl-C drains: running tasks finish and report before it exits.";

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
    /// Aging: a task queued longer than this climbs one priority step (low
    /// -> normal -> high), one more per further such wait, so high-priority
    /// traffic cannot starve it; 0 turns it off [default: 10m].
    #[arg(long, env = "FABRIC_AGING", value_name = "DUR", value_parser = units::parse_duration)]
    pub aging: Option<Duration>,
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
    /// The operator key (64 hex digits; `fabric admin gen-key` makes one)
    /// that wraps the data keys everything a task brings is encrypted
    /// with. Without it Fabric still encrypts, with a key kept beside the
    /// data [default: $CREDENTIALS_DIRECTORY/fabric.key under systemd,
    /// when present].
    #[arg(long, env = "FABRIC_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// TOML file with defaults for these flags.
    #[arg(long, env = "FABRIC_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DispatcherArgs {
    #[command(flatten)]
    pub serve: ServeOpts,
    /// Another dispatcher of this one's group, KEY@HOST:PORT (its key as
    /// it prints it at start), optionally followed by ,http://HOST:PORT
    /// for its REST API. Repeat for each of the other 2 (or 4): three
    /// dispatchers on Raft keep serving when one fails.
    #[arg(long = "peer", value_name = "KEY@HOST:PORT")]
    pub peers: Vec<String>,
    /// The address the other dispatchers and the workers reach this one
    /// at (default: --listen, which must then be a specific address).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,
    /// Join a group that runs already (it is added with `fabric admin
    /// members add`); never form a new one.
    #[arg(long, requires = "peers")]
    pub joining: bool,
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
    /// Another dispatcher of the group, KEY@HOST:PORT (repeatable; or
    /// `[cluster] peers = [...]` in the config file): tried when
    /// --dispatcher does not answer. The worker follows the group's leader
    /// wherever it is.
    #[arg(long = "peer", value_name = "KEY@HOST:PORT")]
    pub peers: Vec<String>,
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
