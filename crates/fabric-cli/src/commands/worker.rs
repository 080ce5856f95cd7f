//! `fabric worker`: join a dispatcher and run its tasks until told to stop.

use std::time::Duration;

use anyhow::Context as _;
use fabric_net::NetConfig;
use fabric_worker::WorkerConfig;

use super::runtime::{self, shutdown_signal};
use crate::cli::WorkerArgs;
use crate::config::{self, WorkerSettings};

pub(crate) fn execute(args: WorkerArgs) -> anyhow::Result<i32> {
    let cfg = worker_config(config::worker(args)?);
    runtime::block_on(async {
        fabric_worker::run(cfg, shutdown_signal())
            .await
            .context("worker stopped")?;
        Ok(0)
    })
}

/// A LAN worker: keeps reconnecting, and drains for up to a minute.
fn worker_config(s: WorkerSettings) -> WorkerConfig {
    WorkerConfig {
        data_dir: s.data_dir,
        dispatcher: s.dispatcher,
        dispatcher_key: s.dispatcher_key,
        join_secret: s.join_secret,
        name: s.name,
        slots: s.slots,
        memory_bytes: s.memory_bytes,
        labels: s.labels,
        net: NetConfig::default(),
        mdns: s.mdns,
        discover_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(60),
        max_reconnects: None,
        clock: fabric_proto::SystemClock::shared(),
    }
}
