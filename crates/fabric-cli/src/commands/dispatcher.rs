//! `fabric dispatcher`: serve a cluster whose workers run on other machines.

use std::path::Path;

use super::runtime::{self, shutdown_signal};
use super::serve::Served;
use crate::cli::DispatcherArgs;
use crate::{config, output};

pub(crate) fn execute(args: &DispatcherArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let cfg = config::dispatcher(args)?;
    runtime::block_on(async {
        let served = Served::start(&cfg, cluster).await?;
        served.announce();
        output::ready();
        shutdown_signal().await;
        served.dispatcher.shutdown().await;
        Ok(0)
    })
}
