//! What a runner's tasks can leave when their worker dies or stops
//! without waiting for them, and its clearing: at a runner's start (what a
//! killed predecessor left), at its stop, and for every runner of this
//! process before it exits.

use std::path::PathBuf;

/// What one runner's tasks can leave: their groups (by name prefix) and
/// their dirs.
pub(crate) struct Sweep {
    pub cgroups: crate::CgroupLayout,
    pub prefix: String,
    pub work_root: PathBuf,
}

impl Sweep {
    /// Kills everything in the runner's task groups (and removes the
    /// groups); how many there were.
    pub fn kill(&self) -> usize {
        self.cgroups.sweep(&self.prefix)
    }

    /// Kills and removes; how many groups and dirs there were. Processes
    /// first (through their groups), then their dirs.
    pub fn run(&self) -> (usize, usize) {
        let groups = self.cgroups.sweep(&self.prefix);
        (groups, crate::scratch::sweep(&self.work_root))
    }
}

/// Every runner this process made, for [`stop_all`].
static SWEEPS: std::sync::Mutex<Vec<Sweep>> = std::sync::Mutex::new(Vec::new());

/// Remembers `sweep` for [`stop_all`].
pub(crate) fn register(sweep: Sweep) {
    SWEEPS.lock().unwrap_or_else(|e| e.into_inner()).push(sweep);
}

/// Kills every native task this process runs and removes what they left,
/// for a process about to exit without waiting for its runs (`fabric up`
/// or `fabric worker` told twice to stop). Without it the next start's
/// sweep would clear them.
pub fn stop_all() {
    for sweep in SWEEPS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        sweep.run();
    }
}
