//! `fabric dispatcher`: serve a cluster whose workers run on other machines.

use std::path::Path;

use super::runtime::{self, Signals, unless_second_signal};
use super::serve::Served;
use crate::cli::DispatcherArgs;
use crate::{config, output};

pub(crate) fn execute(args: &DispatcherArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let cfg = config::dispatcher(args)?;
    runtime::block_on(async {
        let signals = Signals::listen();
        let served = Served::start(&cfg, cluster).await?;
        served.announce(false);
        output::ready();
        signals.nth(1).await;
        output::note("stopping: flushing the store; Ctrl-C again to stop now");
        unless_second_signal(&signals, served.dispatcher.shutdown()).await;
        Ok(0)
    })
}
