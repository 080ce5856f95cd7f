//! What a native task leaves until it is cleared: its cgroups (and the
//! processes in them), its dir and its uid.

use std::sync::Arc;

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
}

impl Remains {
    pub fn new(pool: Option<Arc<UidPool>>) -> Self {
        Self {
            groups: None,
            dir: None,
            uid: None,
            pool,
        }
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

impl Drop for Remains {
    fn drop(&mut self) {
        self.clear();
    }
}
