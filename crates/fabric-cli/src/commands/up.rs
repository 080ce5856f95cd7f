//! `fabric up`: a dispatcher and N workers in this one process.

use std::path::Path;

use super::local_cluster::LocalCluster;
use super::runtime::{self, Signals, unless_second_signal};
use crate::cli::UpArgs;
use crate::{config, output};

pub(crate) fn execute(args: &UpArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let cfg = config::up(args)?;
    runtime::block_on(async {
        let signals = Signals::listen();
        let local = LocalCluster::start(&cfg.serve, cluster, cfg.workers).await?;
        local.served.announce(true);
        output::ready();
        signals.nth(1).await;
        output::note("stopping: draining the local workers; Ctrl-C again to stop now");
        unless_second_signal(&signals, local.stop()).await;
        Ok(0)
    })
}
