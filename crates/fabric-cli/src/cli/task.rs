//! Flags of the commands that run a task: `exec`, `submit` and `run`, and
//! the limits and inputs they share.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::units;

/// How a task is queued and followed, for `submit` and `run`.
#[derive(Debug, Args)]
pub(crate) struct QueueOpts {
    /// A secret for the task, as env NAME (repeatable): never shown in
    /// status, REST, the dashboard or logs, encrypted at rest and dropped
    /// when the task ends. `NAME` alone takes this process's value of NAME
    /// (better than a value on the command line, which `ps` and shell
    /// history show).
    #[arg(long = "secret", value_name = "NAME=VALUE")]
    pub secrets: Vec<String>,
    /// A secret read from a file (repeatable; one trailing newline is cut).
    #[arg(long = "secret-file", value_name = "NAME=PATH")]
    pub secret_files: Vec<String>,
    /// high, normal or low.
    #[arg(long, default_value = "normal")]
    pub priority: String,
    /// Retries after a failed attempt (exponential backoff).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// A correlation id that follows the task into the dispatcher's and
    /// worker's log lines and its record; find it with `fabric tasks
    /// --trace ID` [default: the task's id].
    #[arg(long, value_name = "ID")]
    pub trace: Option<String>,
    /// Run only on a worker that carries this label (repeatable: every
    /// one; `fabric worker --label`, listed by `fabric workers`).
    #[arg(long = "require", value_name = "LABEL")]
    pub require: Vec<String>,
    /// Queue it only once this task has succeeded (repeatable: all of
    /// them; any unique start of an id). If one ends any other way, this
    /// one ends `skipped`.
    #[arg(long = "after", value_name = "ID")]
    pub after: Vec<String>,
    /// This task's stdout becomes the new task's stdin once it succeeded
    /// (implies --after ID).
    #[arg(long, value_name = "ID", conflicts_with = "input")]
    pub input_from: Option<String>,
    /// Start it no earlier than this long from now (e.g. 10m, 2h); it is
    /// `scheduled` until then, and can be cancelled.
    #[arg(long, value_name = "DUR", value_parser = units::parse_duration)]
    pub delay: Option<std::time::Duration>,
    /// Start it no earlier than this time (RFC 3339, e.g.
    /// 2026-12-07T03:00:00+01:00).
    #[arg(long, value_name = "TIME", conflicts_with = "delay")]
    pub at: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print only the task's output: no summary or notes on stderr (the
    /// exit code tells how it ended).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The module to run: a wasm32-wasip1 binary, or a crate dir, which is
    /// built first (cargo build --release --target wasm32-wasip1).
    #[arg(value_name = "MODULE.wasm|DIR")]
    pub module: PathBuf,
    /// The binary to build when the crate dir has several.
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
    /// Fuel budget (about one unit per wasm instruction): 1000000, 500M
    /// or 10G.
    #[arg(long, value_name = "N", value_parser = units::parse_fuel)]
    pub fuel: Option<u64>,
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub queue: QueueOpts,
    /// Wait for the result and print it (exit code as `fabric exec`).
    #[arg(long)]
    pub wait: bool,
    /// One task per file matching GLOB (quoted: `'parts/*.txt'`), the file
    /// as its input; all in one request, under a job id that is printed
    /// (at most 1,000 files).
    #[arg(long, value_name = "GLOB", conflicts_with_all = ["input", "trace"])]
    pub each: Option<String>,
    /// Arguments for the task, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub task: TaskOpts,
    #[command(flatten)]
    pub queue: QueueOpts,
    /// A file or directory placed in the task's dir under the same relative
    /// path (repeatable; uploaded once by content).
    #[arg(long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Bring back the files matching GLOB (relative to the task's dir;
    /// repeatable) into the current directory when the command ends.
    #[arg(long = "output", value_name = "GLOB")]
    pub outputs: Vec<String>,
    /// Stage this task's output files (its --output) into the new task's
    /// dir once it succeeded (repeatable; implies --after ID).
    #[arg(long = "files-from", value_name = "ID")]
    pub files_from: Vec<String>,
    /// Queue it and print its id instead of following it.
    #[arg(long)]
    pub detach: bool,
    /// One task per file matching GLOB (quoted), the file staged and `{}`
    /// in the command replaced by its path; all in one request, under a
    /// job id that is printed (at most 1,000 files).
    #[arg(long, value_name = "GLOB", conflicts_with = "trace")]
    pub each: Option<String>,
    /// The program (as a worker allows it: `cc`, or its path) and its
    /// arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
    pub command: Vec<String>,
}

pub(super) const SUBMIT_EXAMPLES: &str = "\
Examples:
  fabric submit wordfreq.wasm --input book.txt -- --top 5
  fabric submit primes.wasm --input req.json --wait --json
  fabric submit job.wasm --priority high --retries 3 --timeout 10s
  fabric submit wordfreq.wasm --each 'parts/*.txt' --wait   # one task per file

With --wait the exit code follows `fabric exec`: the task's own code, or 124
timed out, 125 fuel exhausted, 126 memory exceeded, 127 trapped, 2 rejected.";

pub(super) const RUN_EXAMPLES: &str = "\
Examples:
  fabric run -- uname -a
  fabric run --file hello.c --output hello.o -- cc -c hello.c -o hello.o
  fabric run --timeout 5m --memory 2GiB --file src --output 'build/*.o' -- make -j4
  echo hello | fabric run --input - -- tr a-z A-Z
  fabric run --detach --json -- sleep 30
  fabric run --each 'src/*.c' --output '*.o' -- cc -c {}    # one task per file

Workers run only the programs their operator allowed (`fabric worker
--allow cc`), inside a process sandbox (no network, a minimal root, the
task's scratch dir as /work); --timeout and --memory bound them.

Exit codes: the command's own exit code; 124 timed out, 126 memory
exceeded, 2 refused (no worker allows the program) or bad usage, 1 any
other failure.";

pub(super) const EXEC_EXAMPLES: &str = "\
Examples:
  fabric exec wordfreq.wasm --input book.txt -- --top 5
  fabric exec ./word-count --input input.json      # a crate dir: built, then run
  seq 10 | fabric exec wc.wasm                    # piped stdin is the input
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
    /// Memory limit, e.g. 64MiB.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub memory: Option<u64>,
    /// Wall-clock limit, e.g. 1.5s, 500ms, 2m.
    #[arg(long, value_name = "DUR", value_parser = units::parse_duration)]
    pub timeout: Option<Duration>,
    /// Bytes kept of each of stdout and stderr, e.g. 4MiB; the rest is cut.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub output_limit: Option<u64>,
    /// Disk of a native task, e.g. 256MiB: its files in /work and /tmp
    /// together, staged files included [default: 1GiB]. They are held in
    /// memory, so they count against --memory too.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    pub disk: Option<u64>,
    /// Environment variable for the task (repeatable). `K` alone passes this
    /// process's value of K. Nothing else is inherited.
    #[arg(long = "env", short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The module to run: a wasm32-wasip1 binary, or a crate dir, which is
    /// built first (cargo build --release --target wasm32-wasip1).
    #[arg(value_name = "MODULE.wasm|DIR")]
    pub module: PathBuf,
    /// The binary to build when the crate dir has several.
    #[arg(long, value_name = "NAME")]
    pub bin: Option<String>,
    /// Fuel budget (about one unit per wasm instruction): 1000000, 500M,
    /// 10G or unlimited.
    #[arg(long, value_name = "N", value_parser = units::parse_fuel)]
    pub fuel: Option<u64>,
    #[command(flatten)]
    pub task: TaskOpts,
    /// Give the task an empty scratch directory at /work, removed afterwards.
    #[arg(long)]
    pub scratch: bool,
    /// Print one JSON object with the outcome instead of the task's output.
    #[arg(long)]
    pub json: bool,
    /// Print only the task's output: no summary or notes on stderr (the
    /// exit code tells how it ended).
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
