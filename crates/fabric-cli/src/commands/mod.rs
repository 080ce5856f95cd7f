//! One file per subcommand, each with an `execute` returning the exit code.

mod exec;
mod task_opts;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit code.
pub(crate) fn execute(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Exec(args) => exec::execute(args),
    }
}
