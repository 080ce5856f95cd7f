//! One file per subcommand, each with an `execute` that returns the exit
//! code, plus the pieces they share: the runtime and shutdown signal, the
//! client connection, the served dispatcher and the local cluster, and the
//! task flags.

mod admin;
mod cancel;
mod client;
mod completions;
mod crate_build;
mod demo;
mod dispatcher;
mod each;
mod exec;
mod job;
mod local_cluster;
mod new;
mod output_files;
mod result;
mod retry;
mod run;
mod runtime;
mod schedule;
mod serve;
mod status;
mod submit;
mod task_opts;
mod tasks;
mod token;
mod top;
mod up;
mod wait;
mod worker;
mod worker_remove;
mod workers;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the process exit code.
pub(crate) fn execute(cli: Cli) -> anyhow::Result<i32> {
    let cluster = cli.cluster.as_deref();
    match cli.command {
        Command::New(args) => new::execute(&args),
        Command::Exec(args) => exec::execute(args),
        Command::Demo(args) => demo::execute(&args),
        Command::Up(args) => up::execute(&args, cluster),
        Command::Dispatcher(args) => dispatcher::execute(&args, cluster),
        Command::Worker(args) => worker::execute(args),
        Command::Token(cmd) => token::execute(&cmd, cluster),
        Command::Admin(cmd) => admin::execute(&cmd, cluster),
        Command::Submit(args) => submit::execute(args, cluster),
        Command::Run(args) => run::execute(args, cluster),
        Command::Job(cmd) => job::execute(cmd, cluster),
        Command::Schedule(cmd) => schedule::execute(cmd, cluster),
        Command::Status(args) => status::execute(&args, cluster),
        Command::Result(args) => result::execute(&args, cluster),
        Command::Cancel(args) => cancel::execute(&args, cluster),
        Command::Retry(args) => retry::execute(&args, cluster),
        Command::Wait(args) => wait::execute(&args, cluster),
        Command::Tasks(args) => tasks::execute(&args, cluster),
        Command::Workers(args) => workers::execute(&args, cluster),
        Command::Top => top::execute(cluster),
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(&args),
    }
}
