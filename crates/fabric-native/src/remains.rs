//! What a native task leaves until it is cleared: its cgroups (and the
//! processes in them), its dir and its uid.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cgroup::TaskGroups;
use crate::scratch::TaskDir;
use crate::uids::UidPool;

/// What a task leaves until it is cleared: its groups (and the processes
/// in them), its dir and its uid. Cleared at the end of a run, or on drop
/// when the run's future is dropped half way (the worker's own deadline).
pub(crate) struct Remains {
    pub groups: Option<TaskGroups>,
    pub dir: Option<TaskDir>,
    pub uid: Option<u32>,
    pool: Option<Arc<UidPool>>,
    /// Counted live until cleared (dropped after `clear` has run).
    _live: LiveGuard,
}

impl Remains {
    /// Remains of a run that counts in `live`; `None` when the runner is
    /// stopping and takes no new run.
    pub fn new(pool: Option<Arc<UidPool>>, live: &Arc<LiveRuns>) -> Option<Self> {
        live.count.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(live.clone());
        if live.stopping.load(Ordering::SeqCst) {
            return None;
        }
        Some(Self {
            groups: None,
            dir: None,
            uid: None,
            pool,
            _live: guard,
        })
    }

    /// Kills, removes, and gives the uid back only if nothing of the task
    /// is left (otherwise the uid is retired: never handed out again).
    pub fn clear(&mut self) {
        let mut clean = self.groups.take().is_none_or(TaskGroups::remove);
        if let Some(dir) = self.dir.take() {
            let path = dir.dir.clone();
            if let Err(e) = dir.remove() {
                tracing::warn!(dir = %path.display(), error = %e, "cannot remove a native task's dir");
                clean = false;
            }
        }
        if let (Some(uid), Some(pool)) = (self.uid.take(), &self.pool) {
            if clean {
                pool.release(uid);
            } else {
                tracing::warn!(
                    uid,
                    "a task's uid is retired: something of its task may remain"
                );
            }
        }
    }
}

/// The runs of a runner whose remains are not cleared yet, and whether it
/// is stopping (then it takes no new run, and its stop waits for these).
#[derive(Debug, Default)]
pub(crate) struct LiveRuns {
    count: AtomicUsize,
    stopping: AtomicBool,
}

impl LiveRuns {
    /// Takes no new run from now on; how many are not cleared yet.
    pub fn stop(&self) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        self.count.load(Ordering::SeqCst)
    }

    /// How many runs are not cleared yet.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

struct LiveGuard(Arc<LiveRuns>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Remains {
    fn drop(&mut self) {
        self.clear();
    }
}
