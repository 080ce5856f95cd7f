//! Cancels of running tasks waiting for the worker's own report of the
//! cancelled attempt: its run time and the output it had produced (what
//! `fabric run` already streamed) then go into the record, not an empty
//! outcome. Each entry lives only while its cancel waits (bounded).

use std::collections::HashMap;
use std::sync::Mutex;

use fabric_proto::{TaskId, TaskOutcome};
use tokio::sync::oneshot;

/// Pending cancels by (task, attempt).
#[derive(Debug, Default)]
pub(crate) struct Cancelling {
    waiting: Mutex<HashMap<(TaskId, u32), oneshot::Sender<TaskOutcome>>>,
}

impl Cancelling {
    /// Registers a cancel of `attempt` of `id`; the receiver gets the
    /// worker's report of it, if one comes.
    pub(crate) fn expect(&self, id: TaskId, attempt: u32) -> oneshot::Receiver<TaskOutcome> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert((id, attempt), tx);
        rx
    }

    /// A cancel stopped waiting (answered, or gave up).
    pub(crate) fn done(&self, id: TaskId, attempt: u32) {
        self.lock().remove(&(id, attempt));
    }

    /// A worker reported an attempt the scheduler no longer has: hands it
    /// to the cancel waiting for it; false when none waits.
    pub(crate) fn reported(&self, id: TaskId, attempt: u32, outcome: TaskOutcome) -> bool {
        match self.lock().remove(&(id, attempt)) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(TaskId, u32), oneshot::Sender<TaskOutcome>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
