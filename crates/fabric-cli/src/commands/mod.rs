//! One file per group of subcommands, each returning the exit code.

pub(crate) mod cluster;
mod demo;
pub(crate) mod exec;
mod remote;
mod task_opts;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit code.
pub(crate) fn execute(cli: Cli) -> anyhow::Result<i32> {
    let cluster = cli.cluster;
    match cli.command {
        Command::Exec(args) => exec::execute(args),
        Command::Demo(args) => demo::execute(args),
        Command::Up(args) => cluster::up(args, cluster),
        Command::Dispatcher(args) => cluster::dispatcher(args, cluster),
        Command::Worker(args) => cluster::worker(args),
        Command::Token(cmd) => cluster::token(cmd, cluster),
        Command::Submit(args) => remote::submit(args, cluster),
        Command::Status(args) => remote::status(args, cluster),
        Command::Result(args) => remote::result(args, cluster),
        Command::Cancel(args) => remote::cancel(args, cluster),
        Command::Tasks(args) => remote::tasks(args, cluster),
        Command::Workers(args) => remote::workers(args, cluster),
    }
}
