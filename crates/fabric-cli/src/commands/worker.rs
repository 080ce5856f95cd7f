//! `fabric worker`: join a dispatcher and run its tasks until told to stop.

use anyhow::Context as _;
use fabric_worker::{Notice, Notices};

use super::runtime::{self, Signals, until_second_signal};
use crate::cli::WorkerArgs;
use crate::{config, output};

pub(crate) fn execute(args: WorkerArgs) -> anyhow::Result<i32> {
    let mut cfg = config::worker(args)?;
    runtime::block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        cfg.notices = Notices::to(tx);
        let printer = tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                output::worker_notice(None, &notice);
            }
        });
        let signals = Signals::listen();
        let drained = signals.clone();
        let run = async {
            fabric_worker::run(cfg, async move { drained.nth(1).await })
                .await
                .context("worker stopped")
        };
        let ran = until_second_signal(&signals, run, "stopping gracefully").await;
        // The run's config (and with it the notices' sender) is gone: the
        // printer ends once it printed what is left.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), printer).await;
        ran?;
        Ok(0)
    })
}

/// Prints a local worker's notices, named, for `fabric up`.
pub(crate) fn print_notices(name: String) -> Notices {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Notice>(64);
    tokio::spawn(async move {
        while let Some(notice) = rx.recv().await {
            output::worker_notice(Some(&name), &notice);
        }
    });
    Notices::to(tx)
}
