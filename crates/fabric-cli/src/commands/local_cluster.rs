//! A dispatcher and N in-process workers on this machine, for `fabric up`
//! and `fabric demo`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabric_client::Client;
use fabric_net::mdns::Interfaces;
use fabric_worker::{WorkerConfig, WorkerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::serve::Served;
use crate::config::{LocalWorkers, ServeConfig};

/// A running local cluster. Stop it with [`LocalCluster::stop`].
pub(crate) struct LocalCluster {
    pub served: Served,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<Result<(), WorkerError>>>,
}

impl LocalCluster {
    /// Starts the dispatcher (see [`Served::start`]) and the workers, which
    /// join with its token over loopback.
    pub(crate) async fn start(
        serve: &ServeConfig,
        cluster: Option<&Path>,
        workers: LocalWorkers,
    ) -> anyhow::Result<Self> {
        let served = Served::start(serve, cluster).await?;
        let (stop, stop_rx) = watch::channel(false);
        let workers = (0..workers.count)
            .map(|i| {
                let name = format!("local-{i}");
                let mut cfg = local_worker(
                    served.data_dir.join(format!("workers/{i}")),
                    &served,
                    name.clone(),
                    workers.slots,
                );
                cfg.native.clone_from(&workers.native);
                if workers.speak {
                    cfg.notices = super::worker::print_notices(name);
                }
                let mut stop = stop_rx.clone();
                tokio::spawn(fabric_worker::run(cfg, async move {
                    let _ = stop.wait_for(|s| *s).await;
                }))
            })
            .collect();
        Ok(Self {
            served,
            stop,
            workers,
        })
    }

    /// Waits until every local worker has registered with the dispatcher.
    pub(crate) async fn wait_for_workers(
        &self,
        client: &Client,
        within: Duration,
    ) -> anyhow::Result<()> {
        let want = self.workers.len();
        let deadline = Instant::now() + within;
        loop {
            let n = client.workers().await?.len();
            if n >= want {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {n} of {want} local workers registered within {} s",
                within.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drains the workers, then shuts the dispatcher down.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for w in self.workers {
            match w.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "local worker failed"),
                Err(e) => tracing::error!(error = %e, "local worker panicked"),
            }
        }
        self.served.dispatcher.shutdown().await;
    }
}

/// Worker settings for one local worker.
fn local_worker(dir: PathBuf, served: &Served, name: String, slots: u32) -> WorkerConfig {
    WorkerConfig {
        dispatcher: Some(served.local_addr),
        join_secret: Some(served.token.secret),
        name,
        slots,
        memory_bytes: u64::from(slots) * (1 << 30),
        labels: vec!["local".into()],
        mdns: Interfaces::Loopback,
        drain_timeout: Duration::from_secs(30),
        max_reconnects: Some(3),
        ..WorkerConfig::new(dir, served.token.dispatcher)
    }
}
