//! `fabric worker`: join a dispatcher and run its tasks until told to stop.

use anyhow::Context as _;

use super::runtime::{self, shutdown_signal};
use crate::cli::WorkerArgs;
use crate::config;

pub(crate) fn execute(args: WorkerArgs) -> anyhow::Result<i32> {
    let cfg = config::worker(args)?;
    runtime::block_on(async {
        fabric_worker::run(cfg, shutdown_signal())
            .await
            .context("worker stopped")?;
        Ok(0)
    })
}
