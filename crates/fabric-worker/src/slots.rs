//! What runs here now: assignments in flight (counted from arrival until
//! their ack, so a drain waits for those too), the cancel handle of each
//! running attempt, cancels that arrived before their attempt started, and
//! the drain flag. One synchronous struct, so the rules are unit-tested
//! without sockets.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use fabric_proto::TaskId;
use tokio::sync::{Notify, oneshot};

/// An attempt: task and attempt number.
pub(crate) type RunKey = (TaskId, u32);

/// Early cancels remembered at most (oldest forgotten first).
const MAX_EARLY_CANCELS: usize = 10_000;

#[derive(Debug, Default)]
struct Inner {
    active: u32,
    /// A drain was asked for: the dispatcher is being told.
    drain_requested: bool,
    /// New assignments are refused (set once the dispatcher was told).
    draining: bool,
    next_run: u64,
    running: HashMap<RunKey, (u64, oneshot::Sender<()>)>,
    early: HashSet<RunKey>,
    early_order: VecDeque<RunKey>,
}

/// The worker's slots.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    inner: Mutex<Inner>,
    idle: Notify,
    drain: Notify,
}

/// Counts one assignment as active until dropped.
#[derive(Debug)]
pub(crate) struct Active(Arc<Slots>);

impl Drop for Active {
    fn drop(&mut self) {
        let idle = {
            let mut inner = self.0.lock();
            inner.active -= 1;
            inner.active == 0
        };
        if idle {
            self.0.idle.notify_waiters();
        }
    }
}

/// A running attempt's registration; [`Slots::finish`] takes it back.
#[derive(Debug)]
pub(crate) struct Run {
    key: RunKey,
    id: u64,
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An assignment arrived.
    pub(crate) fn arrive(self: &Arc<Self>) -> Active {
        self.lock().active += 1;
        Active(self.clone())
    }

    /// Assignments in flight.
    pub(crate) fn active(&self) -> u32 {
        self.lock().active
    }

    /// Whether the worker refuses new work (it drains, and the dispatcher
    /// was told so first).
    pub(crate) fn is_draining(&self) -> bool {
        self.lock().draining
    }

    /// Whether a drain was asked for (the dispatcher may not know yet).
    pub(crate) fn drain_requested(&self) -> bool {
        self.lock().drain_requested
    }

    /// Asks for a drain: the session tells the dispatcher, then calls
    /// [`Slots::refuse_new`]. Returns the assignments in flight.
    pub(crate) fn request_drain(&self) -> u32 {
        let active = {
            let mut inner = self.lock();
            inner.drain_requested = true;
            inner.active
        };
        self.drain.notify_waiters();
        active
    }

    /// Resolves once a drain was asked for.
    pub(crate) async fn drain_asked(&self) {
        self.until(Self::drain_requested).await;
    }

    /// Resolves once new assignments are refused.
    pub(crate) async fn refusing(&self) {
        self.until(Self::is_draining).await;
    }

    async fn until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let notified = self.drain.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }

    /// From now on new assignments are refused.
    pub(crate) fn refuse_new(&self) {
        self.lock().draining = true;
        self.drain.notify_waiters();
    }

    /// Cancels every running attempt (the dispatcher declared this worker
    /// dead: their results would be dropped).
    pub(crate) fn cancel_all(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.running.len();
        for (_, (_, tx)) in inner.running.drain() {
            let _ = tx.send(());
        }
        n
    }

    /// The attempts running now.
    pub(crate) fn running_keys(&self) -> Vec<RunKey> {
        let mut keys: Vec<RunKey> = self.lock().running.keys().copied().collect();
        keys.sort();
        keys
    }

    /// Resolves once nothing is in flight.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Registers a starting attempt; the receiver fires when it is
    /// cancelled (at once, if its cancel came first).
    pub(crate) fn start(&self, key: RunKey) -> (Run, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        inner.next_run += 1;
        let id = inner.next_run;
        if inner.early.remove(&key) {
            inner.early_order.retain(|k| *k != key);
            let _ = tx.send(());
        } else {
            inner.running.insert(key, (id, tx));
        }
        (Run { key, id }, rx)
    }

    /// An attempt ended: forgets its cancel handle, unless a newer run of
    /// the same attempt replaced it meanwhile.
    pub(crate) fn finish(&self, run: Run) {
        let mut inner = self.lock();
        if inner
            .running
            .get(&run.key)
            .is_some_and(|(id, _)| *id == run.id)
        {
            inner.running.remove(&run.key);
        }
    }

    /// Cancels an attempt: true when it was running here; otherwise the
    /// cancel is remembered for when it starts.
    pub(crate) fn cancel(&self, key: RunKey) -> bool {
        let mut inner = self.lock();
        if let Some((_, tx)) = inner.running.remove(&key) {
            let _ = tx.send(());
            return true;
        }
        if inner.early.insert(key) {
            inner.early_order.push_back(key);
            if inner.early_order.len() > MAX_EARLY_CANCELS
                && let Some(old) = inner.early_order.pop_front()
            {
                inner.early.remove(&old);
            }
        }
        false
    }

    /// Attempts with a cancel handle. For checks and tests.
    #[cfg(test)]
    fn running(&self) -> usize {
        self.lock().running.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(n: u32) -> RunKey {
        (TaskId::from_bytes([7; 16]), n)
    }

    #[test]
    fn a_cancel_reaches_a_running_attempt() {
        let slots = Slots::default();
        let (run, mut rx) = slots.start(key(1));
        assert!(rx.try_recv().is_err());
        assert!(slots.cancel(key(1)));
        assert!(rx.try_recv().is_ok());
        slots.finish(run);
        assert_eq!(slots.running(), 0);
    }

    #[test]
    fn a_cancel_before_the_start_fires_at_the_start() {
        let slots = Slots::default();
        assert!(!slots.cancel(key(2)));
        let (run, mut rx) = slots.start(key(2));
        assert!(rx.try_recv().is_ok());
        slots.finish(run);
        // Used once: a later run of the same key is not cancelled.
        let (_run, mut rx) = slots.start(key(2));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_stale_run_does_not_remove_a_newer_runs_handle() {
        let slots = Slots::default();
        let (old, _old_rx) = slots.start(key(3));
        let (_new, mut new_rx) = slots.start(key(3));
        slots.finish(old);
        assert!(slots.cancel(key(3)), "the newer run is still cancellable");
        assert!(new_rx.try_recv().is_ok());
    }

    #[test]
    fn cancel_all_stops_every_run_and_lists_are_sorted() {
        let slots = Slots::default();
        let (_a, mut ra) = slots.start(key(5));
        let (_b, mut rb) = slots.start(key(4));
        assert_eq!(slots.running_keys(), vec![key(4), key(5)]);
        assert_eq!(slots.cancel_all(), 2);
        assert!(ra.try_recv().is_ok() && rb.try_recv().is_ok());
        assert!(slots.running_keys().is_empty());
    }

    #[tokio::test]
    async fn a_drain_request_wakes_whoever_tells_the_dispatcher() {
        let slots = Arc::new(Slots::default());
        let teller = tokio::spawn({
            let slots = slots.clone();
            async move { slots.drain_asked().await }
        });
        tokio::task::yield_now().await;
        assert!(!teller.is_finished());
        slots.request_drain();
        tokio::time::timeout(Duration::from_secs(5), teller)
            .await
            .expect("woken")
            .unwrap();
    }

    #[test]
    fn early_cancels_are_bounded() {
        let slots = Slots::default();
        for n in 0..(MAX_EARLY_CANCELS as u32 + 10) {
            slots.cancel(key(n));
        }
        let inner = slots.lock();
        assert_eq!(inner.early.len(), MAX_EARLY_CANCELS);
        assert_eq!(inner.early_order.len(), MAX_EARLY_CANCELS);
        assert!(!inner.early.contains(&key(0)), "the oldest went first");
    }

    #[tokio::test]
    async fn idle_resolves_when_the_last_assignment_ends() {
        let slots = Arc::new(Slots::default());
        slots.idle().await;
        let a = slots.arrive();
        let b = slots.arrive();
        assert_eq!(slots.request_drain(), 2);
        assert!(slots.drain_requested());
        assert!(
            !slots.is_draining(),
            "refusing only once the dispatcher was told"
        );
        slots.refuse_new();
        assert!(slots.is_draining());
        let waiter = tokio::spawn({
            let slots = slots.clone();
            async move { slots.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("idle after the last one")
            .unwrap();
    }
}
