//! The dispatcher's shared state and its one commit path: scheduler
//! changes are written, flushed, announced to waiters, and placement is
//! woken — in that order, so nobody hears of a change that a crash could
//! undo.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fabric_net::Identity;
use fabric_proto::wire::{WorkerInfo, WorkerState, WorkerSummary};
use fabric_proto::{TaskId, TaskInfo, TaskStatus, WorkerKey};
use fabric_store::{EventKind, Store, StoreError, StoredEvent};
use quinn::Connection;
use tokio::sync::Notify;

use super::DispatcherConfig;
use super::feed::{Feed, FeedEvent};
use super::waiters::Waiters;
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;

mod commit;

/// A registered worker's live connection.
pub(crate) struct WorkerConn {
    /// The QUIC connection assignments and cancels go out on.
    pub(crate) conn: Connection,
    /// What it registered.
    pub(crate) info: WorkerInfo,
}

/// What the scheduler lock guards: the state machine and the connections
/// it places work on.
pub(crate) struct Core {
    /// The scheduler.
    pub(crate) sched: Scheduler,
    /// Registered workers' connections.
    pub(crate) conns: HashMap<WorkerKey, WorkerConn>,
    /// Workers that went away, listed for a while.
    pub(crate) gone: super::gone::Gone,
    /// Held tasks and the tasks they run after.
    pub(crate) deps: super::deps::Deps,
}

impl Core {
    /// How `workers` lists the worker `key` now: from its connection, and
    /// from the scheduler while it still has it.
    /// `seen` is its (running, last heartbeat) when the caller has them.
    pub(crate) fn summary_of(
        &self,
        key: &WorkerKey,
        seen: Option<(u32, u64)>,
    ) -> Option<WorkerSummary> {
        let c = self.conns.get(key)?;
        let (running, last_seen) = seen.unwrap_or_else(|| {
            self.sched
                .workers()
                .find(|(k, ..)| *k == key)
                .map_or((0, 0), |(_, _slots, running, seen)| (running, seen))
        });
        let state = self.sched.worker_state(key).unwrap_or(WorkerState::Down);
        let lost = state == WorkerState::Down;
        Some(WorkerSummary {
            key: *key,
            addr: c.conn.remote_address().to_string(),
            info: c.info.clone(),
            running,
            last_seen_ms: last_seen,
            state,
            since_ms: lost.then_some(last_seen),
            why: lost.then(|| {
                "connection lost; its runs keep their leases until it is back or declared dead"
                    .to_owned()
            }),
        })
    }

    /// Removes the worker's connection, remembering it as gone (`state`
    /// `down` or `removed`, with `why`) for `fabric workers`.
    pub(crate) fn forget_conn(
        &mut self,
        key: &WorkerKey,
        state: WorkerState,
        why: String,
        now: u64,
    ) -> Option<WorkerConn> {
        if let Some(last) = self.summary_of(key, None) {
            self.gone.record(last, state, why, now);
        } else if state == WorkerState::Removed {
            // Gone before (declared dead, say): now removed as well.
            self.gone.mark_removed(key, why);
        }
        self.conns.remove(key)
    }
}

/// Everything the dispatcher's tasks share.
pub struct Shared {
    /// The configuration.
    pub cfg: DispatcherConfig,
    /// The dispatcher's key: QUIC certificate and manifest signatures.
    pub(crate) identity: Identity,
    /// The durable history.
    pub store: Store,
    /// Where writes go: the store, or the Raft log of a group of
    /// dispatchers.
    pub(crate) ledger: super::ledger::Ledger,
    /// This member's part in its group of dispatchers, if it is in one.
    pub(crate) group: Option<super::group::Group>,
    core: Mutex<Core>,
    /// Wakes the placement loop.
    pub(crate) place: Notify,
    /// Clients waiting for tasks.
    pub waiters: Waiters,
    /// Open connections per key.
    pub(crate) peers: std::sync::Arc<super::peers::PeerCount>,
    /// What `/metrics` shows.
    pub metrics: std::sync::Arc<Metrics>,
    /// The live feed of what happens.
    pub feed: Feed,
    /// Cancelled runs whose worker's report is still to come.
    pub(crate) cancelling: super::cancelling::Cancelling,
    /// Tasks being admitted, not queued yet (they count against the
    /// queue's bound).
    pub(crate) admitting: std::sync::atomic::AtomicUsize,
    /// When the earliest unpaused schedule is due (ms; 0: look at the
    /// store at the next tick).
    pub(crate) schedules_due: std::sync::atomic::AtomicU64,
    /// One change to the schedules at a time (adds, actions, firings), so a
    /// firing never writes over a pause or a removal.
    pub(crate) schedules_lock: tokio::sync::Mutex<()>,
    /// The rewrap under way (or last finished) since start, and why it
    /// stopped if it failed.
    pub(crate) rewrap: std::sync::Mutex<Option<(fabric_store::RewrapProgress, Option<String>)>>,
    /// A rewrap loop runs (one at a time).
    pub(crate) rewrapping: std::sync::atomic::AtomicBool,
    /// One backup at a time.
    pub(crate) backup_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(crate) fn new(
        cfg: DispatcherConfig,
        identity: Identity,
        store: Store,
        ledger: super::ledger::Ledger,
        sched: Scheduler,
        metrics: std::sync::Arc<Metrics>,
    ) -> Self {
        Self {
            cfg,
            identity,
            store,
            group: ledger.node().cloned().map(super::group::Group::new),
            ledger,
            core: Mutex::new(Core {
                sched,
                conns: HashMap::new(),
                gone: super::gone::Gone::default(),
                deps: super::deps::Deps::default(),
            }),
            place: Notify::new(),
            waiters: Waiters::default(),
            peers: std::sync::Arc::default(),
            metrics,
            feed: Feed::default(),
            cancelling: super::cancelling::Cancelling::default(),
            admitting: std::sync::atomic::AtomicUsize::new(0),
            schedules_due: std::sync::atomic::AtomicU64::new(0),
            schedules_lock: tokio::sync::Mutex::new(()),
            rewrap: std::sync::Mutex::new(None),
            rewrapping: std::sync::atomic::AtomicBool::new(false),
            backup_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Waits until every write made so far is durable (flushed, or on a
    /// majority of the dispatchers).
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.ledger.durable().await
    }

    /// Whether this dispatcher serves now: always when alone; in a group,
    /// while it leads.
    pub fn leading(&self) -> bool {
        self.group.as_ref().is_none_or(super::group::Group::leading)
    }

    /// Where this dispatcher stands in its group: role, term, log
    /// position, the members and who leads (`None` when alone).
    pub fn group_status(&self) -> Option<fabric_raft::NodeStatus> {
        self.group.as_ref().map(|g| g.node().status())
    }

    /// The leader's REST URL, when this dispatcher is a follower in a
    /// group and knows it (where its REST API redirects).
    pub fn leader_api_url(&self) -> Option<String> {
        let g = self.group.as_ref()?;
        if g.leading() {
            return None;
        }
        g.node()
            .leader()
            .filter(|m| m.key != g.node().me().key)?
            .api_url
    }

    /// The rewrap under way, or the last one finished since start.
    pub fn rewrap_progress(&self) -> Option<fabric_store::RewrapProgress> {
        self.rewrap
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(p, _)| *p)
    }

    /// Whether a rewrap loop runs now.
    pub fn rewrapping(&self) -> bool {
        self.rewrapping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sets what `rewrap_progress` says.
    pub(crate) fn set_rewrap(&self, state: Option<(fabric_store::RewrapProgress, Option<String>)>) {
        *self
            .rewrap
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }

    /// Live tasks now: queued by priority rank (high, normal, low), and
    /// running.
    pub fn live_counts(&self) -> ([u64; 3], u64) {
        let core = self.core();
        let mut queued = [0u64; 3];
        let mut running = 0;
        for (state, priority) in core.sched.live_states() {
            match state {
                fabric_proto::TaskState::Queued => {
                    queued[usize::from(priority.rank())] += 1;
                }
                fabric_proto::TaskState::Running => running += 1,
                _ => {}
            }
        }
        (queued, running)
    }

    /// The dispatcher's clock, ms since the epoch.
    pub fn now(&self) -> u64 {
        self.cfg.clock.now_ms()
    }

    /// The scheduler and connections, locked. Hold it briefly: never across
    /// an await.
    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends to the event log (flushed with the next commit) and the
    /// live feed.
    pub(crate) fn event(&self, task: Option<TaskId>, kind: EventKind, detail: impl Into<String>) {
        let ev = StoredEvent {
            at_ms: self.now(),
            task,
            kind,
            detail: detail.into(),
            actor: super::audit::actor(),
        };
        if let Err(e) = self.ledger.append_event(&ev) {
            tracing::error!(error = %e, "cannot append to the event log");
        }
        self.feed.publish(FeedEvent {
            at_ms: ev.at_ms,
            kind: kind.as_str(),
            task,
            status: None,
            detail: ev.detail,
        });
    }

    /// Tells the live feed (only) about a task; `detail` is only built when
    /// someone listens (this is on every task's path).
    pub(crate) fn publish(
        &self,
        task: TaskId,
        kind: &'static str,
        status: Option<TaskStatus>,
        detail: impl FnOnce() -> String,
    ) {
        if !self.feed.is_listened() {
            return;
        }
        let detail = detail();
        self.feed.publish(FeedEvent {
            at_ms: self.now(),
            kind,
            task: Some(task),
            status,
            detail,
        });
    }

    /// Reads back the records of cold tasks (`scheduler/cold.rs`) among
    /// `ids` and hands them to the scheduler; one whose record is gone from
    /// the store (or is not that task's) is dropped: it could never be
    /// placed. A failed read leaves the rest cold and is returned. Store
    /// reads happen under the core lock: a few microseconds each, for
    /// tasks reloaded by a restart that placement or a cancel reached.
    pub(crate) fn warm(&self, core: &mut Core, ids: &[TaskId]) -> Result<(), StoreError> {
        for id in ids {
            if !core.sched.is_cold(id) {
                continue;
            }
            let stored = self.store.task(id)?;
            if !stored.is_some_and(|rec| core.sched.hydrate(rec)) {
                tracing::error!(task = %id, "a queued task's record is missing from the store; dropping it from the queue");
                core.sched.drop_cold(id);
            }
        }
        Ok(())
    }

    /// Whether the task is in the scheduler and not finished (queued,
    /// held or running): a wait need not build its view to learn that.
    pub(crate) fn unfinished(&self, id: &TaskId) -> bool {
        self.core()
            .sched
            .task(id)
            .is_some_and(|r| !r.state.is_terminal())
    }

    /// A task's client view: live tasks from the scheduler, finished ones
    /// from the store (with the outcome when asked).
    pub fn task_info(
        &self,
        id: &TaskId,
        with_outcome: bool,
    ) -> Result<Option<TaskInfo>, StoreError> {
        let now = self.now();
        let live = {
            let core = self.core();
            core.sched
                .task(id)
                .map(|r| (r.clone(), core.sched.why_waiting(id, now)))
        };
        let (rec, waiting) = match live {
            Some(live) => live,
            None => match self.store.task(id)? {
                // A cold task (`scheduler/cold.rs`) stays cold: what
                // changed in memory is laid over its stored record.
                Some(mut r) => {
                    let core = self.core();
                    let waiting = core
                        .sched
                        .overlay_cold(&mut r)
                        .then(|| core.sched.why_waiting_of(&r, now))
                        .flatten();
                    (r, waiting)
                }
                None => return Ok(None),
            },
        };
        let outcome = if with_outcome && rec.state.is_terminal() {
            self.store.result(id)?
        } else {
            None
        };
        let mut info = rec.info(outcome);
        info.waiting = waiting;
        // The name it is connected under now, else the one its attempt
        // kept (a worker gone since still has its name on its tasks).
        if let Some(name) = info
            .worker
            .and_then(|w| self.core().conns.get(&w).map(|c| c.info.name.clone()))
        {
            info.worker_name = Some(name);
        }
        Ok(Some(info))
    }
}
