//! Clients waiting for a task: its guest events as they come, then its end.
//!
//! Each waiter has a bounded mailbox, not a channel: the latest progress,
//! at most [`MAX_WAITER_LOGS`] log lines, and the final state, which always
//! fits. A client that reads slowly loses intermediate progress (and log
//! lines past the bound), never the result. A waiter is removed when its
//! [`Waiter`] handle is dropped, which the wait request does when its
//! client's stream closes, whether or not the task ever ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use fabric_proto::{EventQueue, GuestEvent, TaskId, TaskInfo};
use tokio::sync::Notify;

/// Log lines buffered per waiter at most.
pub const MAX_WAITER_LOGS: usize = 256;

/// What a waiter hears.
#[derive(Clone, Debug)]
pub enum WaitMsg {
    /// Progress or a log line of the running attempt.
    Event(GuestEvent),
    /// The task's final state, with its outcome.
    Done(Box<TaskInfo>),
    /// The attempt's result could not be recorded (the store failed): the
    /// wait ends with this error; the task itself goes on (retried, or
    /// reported again by its worker).
    Failed(String),
}

/// One waiter's mailbox.
#[derive(Debug)]
struct Mailbox {
    inner: Mutex<(EventQueue, Option<WaitMsg>)>,
    wake: Notify,
}

impl Mailbox {
    fn lock(&self) -> MutexGuard<'_, (EventQueue, Option<WaitMsg>)> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The waiters of each task: an id per waiter and its mailbox.
type WaitMap = HashMap<TaskId, Vec<(u64, Arc<Mailbox>)>>;

/// Every open wait, by task. An entry goes when its task ends or its last
/// waiter hung up.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Mutex<WaitMap>,
    next: std::sync::atomic::AtomicU64,
}

/// A registered wait; dropping it forgets the waiter.
#[derive(Debug)]
pub struct Waiter<'a> {
    waiters: &'a Waiters,
    task: TaskId,
    id: u64,
    mailbox: Arc<Mailbox>,
}

impl Waiter<'_> {
    /// The next message, waiting for one if none is there: buffered events
    /// first, then the end.
    pub async fn recv(&self) -> WaitMsg {
        loop {
            let notified = self.mailbox.wake.notified();
            if let Some(msg) = self.try_recv() {
                return msg;
            }
            notified.await;
        }
    }

    /// The next message if one is there.
    pub fn try_recv(&self) -> Option<WaitMsg> {
        let mut inner = self.mailbox.lock();
        if let Some(e) = inner.0.pop() {
            return Some(WaitMsg::Event(e));
        }
        inner.1.take()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.waiters.remove(&self.task, self.id);
    }
}

impl Waiters {
    fn map(&self) -> MutexGuard<'_, WaitMap> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts waiting for `id`. Register before checking whether the task
    /// already ended, so an end in between is not missed.
    pub fn register(&self, id: TaskId) -> Waiter<'_> {
        let mailbox = Arc::new(Mailbox {
            inner: Mutex::new((EventQueue::new(MAX_WAITER_LOGS), None)),
            wake: Notify::new(),
        });
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.map().entry(id).or_default().push((n, mailbox.clone()));
        Waiter {
            waiters: self,
            task: id,
            id: n,
            mailbox,
        }
    }

    /// Passes a guest event to everyone waiting for `id` (never blocks:
    /// each mailbox keeps the latest progress and a bounded backlog).
    pub fn event(&self, id: &TaskId, event: &GuestEvent) {
        let map = self.map();
        for (_, mailbox) in map.get(id).into_iter().flatten() {
            mailbox.lock().0.push(event.clone());
            mailbox.wake.notify_one();
        }
    }

    /// Tells everyone waiting for the task that it ended, and forgets them.
    pub fn done(&self, info: &TaskInfo) {
        let Some(list) = self.map().remove(&info.id) else {
            return;
        };
        for (_, mailbox) in list {
            mailbox.lock().1 = Some(WaitMsg::Done(Box::new(info.clone())));
            mailbox.wake.notify_one();
        }
    }

    /// Ends every wait on `id` with `error` (see [`WaitMsg::Failed`]).
    pub fn failed(&self, id: &TaskId, error: &str) {
        let Some(list) = self.map().remove(id) else {
            return;
        };
        for (_, mailbox) in list {
            mailbox.lock().1 = Some(WaitMsg::Failed(error.to_owned()));
            mailbox.wake.notify_one();
        }
    }

    /// Ends every wait with `error` (the dispatcher stopped leading).
    pub(crate) fn fail_all(&self, error: &str) {
        let all: Vec<_> = self.map().drain().collect();
        for (_, list) in all {
            for (_, mailbox) in list {
                mailbox.lock().1 = Some(WaitMsg::Failed(error.to_owned()));
                mailbox.wake.notify_one();
            }
        }
    }

    fn remove(&self, task: &TaskId, id: u64) {
        let mut map = self.map();
        if let Some(list) = map.get_mut(task) {
            list.retain(|(n, _)| *n != id);
            if list.is_empty() {
                map.remove(task);
            }
        }
    }

    /// Open waits, over all tasks.
    pub(crate) fn len(&self) -> usize {
        self.map().values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::{LogLevel, Sha256, TaskRecord, TaskSpec};

    use super::*;

    fn info() -> TaskInfo {
        TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 1, 0).info(None)
    }

    #[test]
    fn events_then_the_end_reach_every_waiter_and_the_entry_goes() {
        let w = Waiters::default();
        let task = info();
        let a = w.register(task.id);
        let b = w.register(task.id);
        w.event(&task.id, &GuestEvent::Progress { done: 1, total: 2 });
        w.done(&task);
        for rx in [&a, &b] {
            assert!(matches!(rx.try_recv(), Some(WaitMsg::Event(_))));
            assert!(matches!(rx.try_recv(), Some(WaitMsg::Done(i)) if i.id == task.id));
        }
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_waiter_that_goes_is_forgotten_even_if_its_task_never_ends() {
        let w = Waiters::default();
        let task = info();
        let a = w.register(task.id);
        let b = w.register(task.id);
        assert_eq!(w.len(), 2);
        drop(a);
        assert_eq!(w.len(), 1);
        drop(b);
        assert_eq!(w.len(), 0);
        // An event for a task nobody waits for is a no-op.
        w.event(&task.id, &GuestEvent::Progress { done: 1, total: 2 });
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn a_waiter_that_does_not_read_buffers_a_bounded_backlog_and_still_gets_the_end() {
        let w = Waiters::default();
        let task = info();
        let rx = w.register(task.id);
        for i in 0..100_000u64 {
            w.event(&task.id, &GuestEvent::Progress { done: i, total: 0 });
            let message = String::new();
            w.event(
                &task.id,
                &GuestEvent::Log {
                    level: LogLevel::Info,
                    message,
                },
            );
        }
        w.done(&task);
        let mut got = Vec::new();
        while let Some(msg) = rx.try_recv() {
            got.push(msg);
            assert!(got.len() <= MAX_WAITER_LOGS + 3, "unbounded backlog");
        }
        // The kept lines, one warning about the rest, the latest progress,
        // then the end.
        assert_eq!(got.len(), MAX_WAITER_LOGS + 3);
        let progress = &got[MAX_WAITER_LOGS + 1];
        assert!(
            matches!(
                progress,
                WaitMsg::Event(GuestEvent::Progress { done: 99_999, .. })
            ),
            "{progress:?}"
        );
        assert!(matches!(got.last(), Some(WaitMsg::Done(i)) if i.id == task.id));
    }

    #[tokio::test]
    async fn recv_waits_for_the_next_message() {
        let w = Arc::new(Waiters::default());
        let task = info();
        let rx = w.register(task.id);
        let (w2, t2) = (w.clone(), task.clone());
        let sender = tokio::spawn(async move {
            tokio::task::yield_now().await;
            w2.done(&t2);
        });
        let msg = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the end arrives");
        assert!(matches!(msg, WaitMsg::Done(_)));
        sender.await.unwrap();
    }
}
