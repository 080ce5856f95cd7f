//! How many commits and flushes the store has made, so a caller can see
//! what a request cost it: a submit of a thousand tasks should be one
//! transaction and one flush, not a thousand.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::Store;

/// The store's running counts (shared by its clones).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    commits: AtomicU64,
    flushes: AtomicU64,
}

impl Tally {
    /// A task or job write was committed (one transaction, or one lone
    /// insert).
    pub(crate) fn committed(&self) {
        self.commits.fetch_add(1, Relaxed);
    }

    /// A [`Store::flush`] finished.
    pub(crate) fn flushed(&self) {
        self.flushes.fetch_add(1, Relaxed);
    }
}

/// What the store has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoTally {
    /// Commits of task and job writes: each transaction of task writes
    /// (with the job it belongs to, if any) and each job saved on its own.
    pub commits: u64,
    /// Flushes asked for by [`Store::flush`] (sled's own timed flushes in
    /// the background are not counted).
    pub flushes: u64,
}

impl IoTally {
    /// What happened between `earlier` and this.
    pub fn since(self, earlier: IoTally) -> IoTally {
        IoTally {
            commits: self.commits.saturating_sub(earlier.commits),
            flushes: self.flushes.saturating_sub(earlier.flushes),
        }
    }
}

impl Store {
    /// The commits and flushes made so far.
    pub fn io_tally(&self) -> IoTally {
        IoTally {
            commits: self.tally.commits.load(Relaxed),
            flushes: self.tally.flushes.load(Relaxed),
        }
    }
}
