//! Clients waiting for a task: its guest events as they come, then its end.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fabric_proto::{GuestEvent, TaskId, TaskInfo};
use tokio::sync::mpsc;

/// What a waiter hears.
#[derive(Clone, Debug)]
pub(crate) enum WaitMsg {
    /// Progress or a log line of the running attempt.
    Event(GuestEvent),
    /// The task's final state, with its outcome.
    Done(Box<TaskInfo>),
}

/// Every open wait, by task. An entry goes when its task ends or its last
/// waiter hung up.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    map: Mutex<HashMap<TaskId, Vec<mpsc::UnboundedSender<WaitMsg>>>>,
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, HashMap<TaskId, Vec<mpsc::UnboundedSender<WaitMsg>>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts waiting for `id`. Register before checking whether the task
    /// already ended, so an end in between is not missed.
    pub(crate) fn register(&self, id: TaskId) -> mpsc::UnboundedReceiver<WaitMsg> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.map().entry(id).or_default().push(tx);
        rx
    }

    /// Passes a guest event to everyone waiting for `id`.
    pub(crate) fn event(&self, id: &TaskId, event: &GuestEvent) {
        self.send(id, WaitMsg::Event(event.clone()), false);
    }

    /// Tells everyone waiting for the task that it ended, and forgets them.
    pub(crate) fn done(&self, info: &TaskInfo) {
        self.send(&info.id, WaitMsg::Done(Box::new(info.clone())), true);
    }

    fn send(&self, id: &TaskId, msg: WaitMsg, last: bool) {
        let mut map = self.map();
        let Some(list) = map.get_mut(id) else {
            return;
        };
        list.retain(|tx| tx.send(msg.clone()).is_ok());
        if last || list.is_empty() {
            map.remove(id);
        }
    }

    /// Drops waiters of `id` whose receivers are gone.
    pub(crate) fn prune(&self, id: &TaskId) {
        let mut map = self.map();
        if let Some(list) = map.get_mut(id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                map.remove(id);
            }
        }
    }

    /// Tasks someone waits for. For checks and tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::{Sha256, TaskRecord, TaskSpec};

    use super::*;

    fn info() -> TaskInfo {
        TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 1, 0).info(None)
    }

    #[test]
    fn events_then_the_end_reach_every_waiter_and_the_entry_goes() {
        let w = Waiters::default();
        let task = info();
        let mut a = w.register(task.id);
        let mut b = w.register(task.id);
        w.event(&task.id, &GuestEvent::Progress { done: 1, total: 2 });
        w.done(&task);
        for rx in [&mut a, &mut b] {
            assert!(matches!(rx.try_recv(), Ok(WaitMsg::Event(_))));
            assert!(matches!(rx.try_recv(), Ok(WaitMsg::Done(i)) if i.id == task.id));
        }
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn hung_up_waiters_are_pruned() {
        let w = Waiters::default();
        let task = info();
        drop(w.register(task.id));
        w.prune(&task.id);
        assert_eq!(w.len(), 0);
        // An event for a task nobody waits for is a no-op.
        w.event(&task.id, &GuestEvent::Progress { done: 1, total: 2 });
        assert_eq!(w.len(), 0);
    }
}
