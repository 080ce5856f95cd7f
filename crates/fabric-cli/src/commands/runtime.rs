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

/// Ctrl-C and SIGTERM, counted: the first asks a long-running command to
/// stop gracefully (drain), the second to stop now.
#[derive(Clone)]
pub(crate) struct Signals(tokio::sync::watch::Receiver<u32>);

impl Signals {
    /// Starts counting (on the current runtime).
    pub(crate) fn listen() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            // The streams are made once, so no signal falls between two
            // listeners.
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                tracing::error!("cannot listen for Ctrl-C and SIGTERM");
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Self(rx)
    }

    /// Resolves once `n` signals arrived.
    pub(crate) async fn nth(&self, n: u32) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|&seen| seen >= n).await;
    }
}

/// Runs `graceful` until it ends; the first signal is its cue to stop
/// gracefully (`first` says what happens), a second exits the process at
/// once (see [`unless_second_signal`]).
pub(crate) async fn until_second_signal<T>(
    signals: &Signals,
    graceful: impl Future<Output = anyhow::Result<T>>,
    first: &str,
) -> anyhow::Result<T> {
    tokio::pin!(graceful);
    tokio::select! {
        r = &mut graceful => return r,
        () = signals.nth(1) => crate::output::note(first),
    }
    unless_second_signal(signals, graceful).await
}

/// Awaits `stopping` (a graceful stop under way after the first signal),
/// unless a second signal comes first: then the process exits at once with
/// 130, and restart recovery requeues what was running.
pub(crate) async fn unless_second_signal<T>(
    signals: &Signals,
    stopping: impl Future<Output = T>,
) -> T {
    tokio::select! {
        r = stopping => r,
        () = signals.nth(2) => {
            crate::output::note("stopping now; the dispatcher requeues what was running");
            // Native tasks this process runs die now, through their
            // cgroups, and leave no dirs behind.
            fabric_native::stop_all();
            std::process::exit(130);
        }
    }
}
