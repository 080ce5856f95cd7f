//! The `fabric` command line.
//!
//! Layers: `cli` parses flags (clap), each command in `commands/` validates
//! and resolves them and runs, and `output` is the only module that writes to
//! the terminal. Errors carry anyhow context; `main` maps them to the exit
//! codes of the user contract in one place.

mod cli;
mod commands;
mod output;
mod profile;
mod units;

use std::process::ExitCode;

use clap::Parser as _;

/// Marks an error as bad usage or bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Shorthand for a [`UsageError`] as an `anyhow::Error`.
pub(crate) fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    let code = match commands::execute(args) {
        Ok(code) => code,
        Err(err) => {
            output::error(&err);
            if err.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FABRIC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
