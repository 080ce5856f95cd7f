//! The `fabric` command line.
//!
//! It runs in four layers, each in its own module, and data only flows down:
//!
//! 1. `cli` parses flags and `FABRIC_*` environment variables (clap) into
//!    plain structs, with value parsers for sizes and durations (`units`).
//! 2. `config` resolves them, with the `--config` TOML file (read once,
//!    there) and the built-in defaults, into settings structs such as
//!    `ServeConfig` and the worker's `WorkerConfig`.
//! 3. `commands` has one file per subcommand; its `execute` validates what
//!    is left, runs (locally, or against the cluster named by the `profile`)
//!    and returns the exit code of the user contract.
//! 4. `output` is the only module that writes to the terminal: human text or
//!    the `--json` views, progress and errors.
//!
//! Errors carry anyhow context; `main` maps them to exit codes in one place
//! (2 for a [`UsageError`], 1 for anything else).

mod cli;
mod commands;
mod config;
mod output;
mod profile;
mod units;

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc, or the system allocator in the sandbox helper (see
/// `fabric_alloc`).
#[global_allocator]
static ALLOCATOR: fabric_alloc::Fabric = fabric_alloc::Fabric;

/// Marks an error as bad usage or bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// The task has not finished yet (`result` of a running task, a `wait`
/// that gave up): exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct NotFinished(pub String);

/// Shorthand for a [`UsageError`] as an `anyhow::Error`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

fn main() -> ExitCode {
    // The native sandbox's helper (the worker re-executes this binary for
    // each native task): no CLI, no logging, its stdio is the task's.
    let mut argv = std::env::args_os().skip(1);
    if argv
        .next()
        .is_some_and(|a| a == fabric_native::HELPER_COMMAND)
    {
        let spec = argv.next().unwrap_or_default();
        let code = fabric_native::helper_main(std::path::Path::new(&spec));
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let args = cli::Cli::parse();
    // `fabric top` owns the screen: log lines would tear through it.
    if !matches!(args.command, cli::Command::Top) {
        init_tracing(args.verbose, args.log_format == "json");
    }
    let code = match commands::execute(args) {
        Ok(code) => code,
        Err(err) => {
            output::error(&err);
            exit_code_of(&err)
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The contract's exit code for an error: 2 for bad usage and for anything
/// the dispatcher rejected (a module that cannot run, limits over the
/// maximum, an input too large), 3 for a task that has not finished yet, 1
/// for every other failure.
fn exit_code_of(err: &anyhow::Error) -> i32 {
    use fabric_proto::wire::ErrorCode;
    if err
        .chain()
        .any(|c| c.downcast_ref::<NotFinished>().is_some())
    {
        return 3;
    }
    let rejected = err.chain().any(|cause| {
        cause.downcast_ref::<UsageError>().is_some()
            || cause
                .downcast_ref::<fabric_client::ClientError>()
                .and_then(fabric_client::ClientError::code)
                .is_some_and(|c| matches!(c, ErrorCode::BadRequest | ErrorCode::TooLarge))
    });
    if rejected { 2 } else { 1 }
}

fn init_tracing(verbose: u8, json: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let given = std::env::var("FABRIC_LOG").ok();
    let mut filter = given
        .as_deref()
        .and_then(|f| tracing_subscriber::EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    // openraft logs every failed RPC to a member that is down (five times
    // a second) at error level; Fabric says what matters of the group
    // itself (leading, stepping down). Shown when FABRIC_LOG names it.
    if !given.as_deref().is_some_and(|f| f.contains("openraft"))
        && let Ok(d) = "openraft=off".parse()
    {
        filter = filter.add_directive(d);
    }
    if json {
        // One object per line: the event's fields flattened, and the
        // current span's (a task's `trace` among them) under "span".
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
        return;
    }
    // Colour only for a person at a terminal who did not ask for none.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        .init();
}
