//! Group commit: many writers, one flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Notify, watch};

use crate::{Store, StoreError};

/// Batches durability waits: every caller of [`GroupCommit::durable`]
/// returns once a flush that started after its call has finished, and
/// callers that arrive while a flush runs share the next one.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicU64,
    wake: Notify,
    done: watch::Sender<(u64, Option<String>)>,
}

impl GroupCommit {
    /// Starts the flusher task on the current tokio runtime. After the first
    /// request it waits `linger` for more writers to join the same flush
    /// (zero: flush at once).
    pub fn start(store: Store, linger: std::time::Duration) -> Self {
        Self::start_observed(store, linger, |_| {})
    }

    /// [`GroupCommit::start`], telling `observe` how long each flush took.
    pub fn start_observed(
        store: Store,
        linger: std::time::Duration,
        observe: impl Fn(std::time::Duration) + Send + Sync + 'static,
    ) -> Self {
        let (done, _) = watch::channel((0, None));
        let inner = Arc::new(Inner {
            requested: AtomicU64::new(0),
            wake: Notify::new(),
            done,
        });
        let worker = inner.clone();
        tokio::spawn(async move {
            let mut flushed = 0;
            loop {
                let target = worker.requested.load(Ordering::Acquire);
                if target == flushed {
                    worker.wake.notified().await;
                    continue;
                }
                if !linger.is_zero() {
                    tokio::time::sleep(linger).await;
                }
                let target = worker.requested.load(Ordering::Acquire);
                let started = std::time::Instant::now();
                let err = store.flush().await.err().map(|e| e.to_string());
                observe(started.elapsed());
                if let Some(e) = &err {
                    tracing::error!(error = %e, "store flush failed");
                }
                flushed = target;
                worker.done.send_replace((flushed, err));
            }
        });
        Self { inner }
    }

    /// Waits until everything written before this call is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let ticket = self.inner.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut rx = self.inner.done.subscribe();
        self.inner.wake.notify_one();
        let seen = rx
            .wait_for(|(flushed, _)| *flushed >= ticket)
            .await
            .map_err(|_| StoreError::Sled(sled::Error::ReportableBug("flusher stopped".into())))?;
        match &seen.1 {
            Some(e) => Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                e.clone(),
            )))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use fabric_proto::{Sha256, TaskId, TaskRecord, TaskSpec};

    use super::GroupCommit;
    use crate::testing::{reopen, temp_store};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    /// A group commit that counts its flushes.
    fn counted(store: &crate::Store, linger: Duration) -> (GroupCommit, Arc<AtomicU64>) {
        let flushes = Arc::new(AtomicU64::new(0));
        let seen = flushes.clone();
        let gc = GroupCommit::start_observed(store.clone(), linger, move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        (gc, flushes)
    }

    #[test]
    fn group_commit_returns_after_flush() {
        let (dir, store) = temp_store();
        let id = TaskId::new();
        runtime().block_on(async {
            let (gc, flushes) = counted(&store, Duration::ZERO);
            let rec = TaskRecord::queued(id, TaskSpec::wasm(Sha256::of(b"m")), 1, 1);
            store.save_task(&rec).unwrap();
            assert_eq!(flushes.load(Ordering::SeqCst), 0);
            gc.durable().await.unwrap();
            assert_eq!(
                flushes.load(Ordering::SeqCst),
                1,
                "durable returned before a flush"
            );
            // A later call needs a flush of its own: the one before may have
            // started before its write.
            gc.durable().await.unwrap();
            assert_eq!(flushes.load(Ordering::SeqCst), 2);
        });
        drop(store);
        let again = reopen(dir.path());
        assert!(again.task(&id).unwrap().is_some(), "the write is on disk");
    }

    #[test]
    fn concurrent_writers_share_one_flush() {
        let (_dir, store) = temp_store();
        runtime().block_on(async {
            // No linger: on one thread all eight ask before the flusher
            // runs again, so sharing alone makes it one flush.
            let (gc, flushes) = counted(&store, Duration::ZERO);
            for _ in 0..8 {
                let rec = TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 1, 1);
                store.save_task(&rec).unwrap();
            }
            let waits: Vec<_> = (0..8)
                .map(|_| {
                    let gc = gc.clone();
                    tokio::spawn(async move { gc.durable().await })
                })
                .collect();
            for w in waits {
                w.await.unwrap().unwrap();
            }
            assert_eq!(
                flushes.load(Ordering::SeqCst),
                1,
                "eight writers waiting together share one flush"
            );
        });
    }
}
