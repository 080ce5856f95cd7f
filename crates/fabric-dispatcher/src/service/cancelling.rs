//! Running tasks just cancelled, whose worker's own report of the stopped
//! run is still to come: the record (already durable as `cancelled`) then
//! gains the run's output and run time. Only the worker that held the
//! lease is heard, and only for a while; the map is bounded.

use std::collections::HashMap;
use std::sync::Mutex;

use fabric_proto::{TaskId, WorkerKey};

/// Most cancelled runs awaiting their report; the oldest is dropped.
const MAX_PENDING: usize = 1_024;
/// How long a report is awaited.
const REPORT_WINDOW_MS: u64 = 60_000;

/// Cancelled runs by (task, attempt): the worker that held them, and when.
#[derive(Debug, Default)]
pub(crate) struct Cancelling {
    pending: Mutex<HashMap<(TaskId, u32), (WorkerKey, u64)>>,
}

impl Cancelling {
    /// `attempt` of `id`, leased to `worker`, was cancelled at `now`.
    pub(crate) fn cancelled(&self, id: TaskId, attempt: u32, worker: WorkerKey, now: u64) {
        let mut pending = self.lock();
        pending.retain(|_, (_, at)| now.saturating_sub(*at) < REPORT_WINDOW_MS);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            pending.remove(&oldest);
        }
        pending.insert((id, attempt), (worker, now));
    }

    /// Whether `worker`'s report of `attempt` of `id` is the awaited
    /// report of a cancelled run (then no longer awaited).
    pub(crate) fn take(&self, id: TaskId, attempt: u32, worker: WorkerKey, now: u64) -> bool {
        let mut pending = self.lock();
        match pending.get(&(id, attempt)) {
            Some((w, at)) if *w == worker && now.saturating_sub(*at) < REPORT_WINDOW_MS => {
                pending.remove(&(id, attempt));
                true
            }
            _ => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TaskId, u32), (WorkerKey, u64)>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_lease_holder_is_heard_once_within_the_window_and_the_map_is_bounded() {
        let c = Cancelling::default();
        let (id, a, b) = (TaskId::new(), WorkerKey([1; 32]), WorkerKey([2; 32]));
        c.cancelled(id, 2, a, 1_000);
        assert!(!c.take(id, 2, b, 1_001), "another worker is not heard");
        assert!(!c.take(id, 1, a, 1_001), "nor another attempt");
        assert!(c.take(id, 2, a, 1_002));
        assert!(!c.take(id, 2, a, 1_003), "once");
        c.cancelled(id, 3, a, 0);
        assert!(!c.take(id, 3, a, REPORT_WINDOW_MS), "too late");
        for n in 0..=MAX_PENDING as u64 {
            c.cancelled(TaskId::new(), 1, a, n);
        }
        assert!(c.lock().len() <= MAX_PENDING);
    }
}
