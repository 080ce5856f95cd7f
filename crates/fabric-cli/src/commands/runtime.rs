//! The tokio runtimes commands run on, and the shutdown signal.

use std::future::Future;

use anyhow::Context as _;

/// A multi-threaded runtime for the cluster commands.
pub(crate) fn multi_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    // Store calls (sled) block briefly inside async code; a few threads
    // beyond the core count keep the network moving meanwhile.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(4);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A single-threaded runtime with timers, enough for one local task.
pub(crate) fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the async runtime")
}

/// Blocks on `fut` in a fresh multi-threaded runtime.
pub(crate) fn block_on<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    multi_thread()?.block_on(fut)
}

/// Resolves when Ctrl-C or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
