//! The scheduler: a plain state machine over live tasks and workers.
//!
//! No I/O, no clocks, no threads: every method takes `now` (ms since the
//! epoch) and returns the task records it changed, which the service then
//! writes to the store. Property tests drive it directly.

use std::collections::{BTreeSet, HashMap, HashSet};

pub use fabric_proto::WorkerKey;
use fabric_proto::{TaskId, TaskRecord, TaskState, TaskStatus};

mod adopt;
mod aging;
mod cold;
mod held;
mod lost;
mod place;
mod queue;
mod waiting;
mod worker;
mod workers;

pub use adopt::AWAIT_MS;
use cold::Cold;
pub use cold::ColdTask;
use queue::{Queue, QueueKey};
use worker::Worker;
pub use workers::{Registration, Tick};

/// Scheduling knobs.
#[derive(Clone, Debug)]
pub struct SchedConfig {
    /// Workers send a heartbeat this often.
    pub heartbeat_ms: u64,
    /// A worker that misses this many heartbeats is dead.
    pub missed_heartbeats: u32,
    /// First retry delay; doubles per failure.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// A task lost with its worker this many times is dead-lettered.
    pub max_lost: u32,
    /// A lease lasts the task's timeout plus this grace; past it without a
    /// report the attempt is lost.
    pub lease_grace_ms: u64,
    /// First wait after a worker refused an attempt; doubles per refusal in
    /// a row (up to `backoff_max_ms`).
    pub refusal_backoff_ms: u64,
    /// A task queued longer than this climbs one priority step, and one
    /// more for each further such wait (low -> normal -> high), so no
    /// stream of higher-priority work keeps it queued forever; 0 turns
    /// aging off.
    pub aging_ms: u64,
    /// A task refused this many times in a row is given up as failed.
    pub max_refused: u32,
    /// Tasks held whole in memory past which a newly submitted task is
    /// held cold (what placement needs, about 100 bytes, instead of its
    /// whole record) and read back from the store when placement reaches
    /// it: a deep queue costs what a restarted one does. 0: no limit.
    pub hot_tasks: usize,
}

/// Default [`SchedConfig::hot_tasks`].
pub const DEFAULT_HOT_TASKS: usize = 20_000;

/// Default [`SchedConfig::aging_ms`]: 10 minutes.
pub const DEFAULT_AGING_MS: u64 = 10 * 60 * 1000;

impl Default for SchedConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 1_000,
            missed_heartbeats: 3,
            backoff_base_ms: 250,
            backoff_max_ms: 30_000,
            max_lost: 5,
            lease_grace_ms: fabric_proto::DEFAULT_LEASE_GRACE_MS,
            refusal_backoff_ms: 100,
            max_refused: 20,
            aging_ms: DEFAULT_AGING_MS,
            hot_tasks: DEFAULT_HOT_TASKS,
        }
    }
}

/// What [`Scheduler::complete`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    /// Record this result; the task is finished.
    Final(TaskRecord),
    /// The attempt failed and will be retried after a backoff.
    Retry(TaskRecord),
    /// The report is for an attempt that no longer holds the lease: drop it.
    Stale,
}

/// A record that changed without a result of the task's own.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The attempt was lost (its worker died, its stream broke, its lease
    /// passed its deadline, the dispatcher restarted): requeued at once.
    /// The text says why.
    Lost(TaskRecord, String),
    /// A worker refused the attempt: requeued after a backoff.
    Refused(TaskRecord, String),
    /// The task is finished without a result from a worker (lost or
    /// refused too often); record a synthetic failed outcome with this
    /// message.
    Give(TaskRecord, String),
}

impl Change {
    /// The changed record.
    pub fn record(&self) -> &TaskRecord {
        match self {
            Self::Lost(r, _) | Self::Refused(r, _) | Self::Give(r, _) => r,
        }
    }
}

/// Live tasks, the queue, workers and leases.
#[derive(Debug, Default)]
pub struct Scheduler {
    cfg: SchedConfig,
    tasks: HashMap<TaskId, TaskRecord>,
    /// Queued tasks reloaded by a restart and held slim (`cold.rs`).
    cold: HashMap<TaskId, Box<Cold>>,
    /// Cold tasks placement reached, to be read back (`cold.rs`).
    wanted: Vec<TaskId>,
    /// Where placement stopped for them, to go on from once they are.
    resume: Option<QueueKey>,
    queue: Queue,
    workers: HashMap<WorkerKey, Worker>,
    /// Lease deadlines: (deadline, task), and each leased task's deadline.
    deadlines: BTreeSet<(u64, TaskId)>,
    lease_deadline: HashMap<TaskId, u64>,
    /// After a take-over: queued tasks whose first attempt may be running
    /// unwritten on a worker (`adopt.rs`).
    adoptable: HashSet<TaskId>,
    /// After a take-over: placement waits until then for awaited workers.
    hold_until: u64,
}

impl Scheduler {
    /// An empty scheduler.
    pub fn new(cfg: SchedConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SchedConfig {
        &self.cfg
    }

    /// Reloads unfinished tasks after a restart. Leases held before the
    /// restart are void: a task that was running lost that attempt (counted
    /// against its lost budget, so a task that crashes the dispatcher is
    /// given up after a few restarts) and is requeued; its next attempt
    /// number is higher than any it was given before, because every lease
    /// but a first one is written before it is handed out (and a queued
    /// task that never ran skips one number, see below).
    pub fn restore(&mut self, records: Vec<TaskRecord>, now: u64) -> Vec<Change> {
        let mut changed = Vec::new();
        for mut rec in records {
            if rec.state == TaskState::Running {
                changed.push(self.lose(rec, "the dispatcher restarted", now));
            } else if rec.state == TaskState::Waiting {
                // Its parents are looked at by the caller (service::deps).
                self.tasks.insert(rec.id, rec);
            } else {
                // A task's first lease goes out without being written (see
                // [`Scheduler::may_send_unwritten`]), so a task
                // stored as queued without an attempt may have been sent as
                // attempt 1 just before the crash: that number is skipped.
                if rec.attempt == 0 {
                    rec.attempt = 1;
                }
                self.enqueue(rec);
            }
        }
        changed
    }

    /// Whether a new lease may go out without being written: only a task's
    /// very first attempt, whose stored record says it never ran. Every
    /// later lease is on disk before it goes out, so at most one attempt
    /// beyond what the store says can have been sent, and a restart that
    /// skips it (above) never repeats a number. The price: a crash during a
    /// first attempt is not counted against the lost-attempt budget.
    pub fn may_send_unwritten(rec: &TaskRecord) -> bool {
        rec.attempt == 1
    }

    fn enqueue(&mut self, rec: TaskRecord) {
        self.queue.push(&rec);
        self.tasks.insert(rec.id, rec);
    }

    /// Adds a newly admitted task (state `Queued`, or `Scheduled` with its
    /// `not_before_ms` set).
    pub fn submit(&mut self, rec: TaskRecord) {
        debug_assert!(matches!(
            rec.state,
            TaskState::Queued | TaskState::Scheduled
        ));
        self.enqueue(rec);
    }

    /// [`Scheduler::submit`] for a task whose record is stored as it is
    /// here: past [`SchedConfig::hot_tasks`] it is held cold.
    pub fn submit_stored(&mut self, rec: TaskRecord) {
        let deep = self.cfg.hot_tasks > 0 && self.tasks.len() >= self.cfg.hot_tasks;
        match deep.then(|| cold::ColdTask::submitted(&rec)).flatten() {
            Some(task) => self.file_cold(task),
            None => self.submit(rec),
        }
    }

    /// A live task.
    pub fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.tasks.get(id)
    }

    /// Number of live (queued or running) tasks, cold ones included.
    pub fn live(&self) -> usize {
        self.tasks.len() + self.cold.len()
    }

    /// Whether `id` is live (queued, running or waiting), cold or not.
    pub fn is_live(&self, id: &TaskId) -> bool {
        self.tasks.contains_key(id) || self.cold.contains_key(id)
    }

    /// Number of tasks waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Frees the worker's slot and memory held by the lease of `rec`, and
    /// forgets the lease's deadline.
    fn release(&mut self, rec: &TaskRecord, worker: &WorkerKey) {
        if let Some(w) = self.workers.get_mut(worker)
            && w.leases.remove(&rec.id)
        {
            w.used_memory = w.used_memory.saturating_sub(rec.spec.limits.memory_bytes);
        }
        if let Some(deadline) = self.lease_deadline.remove(&rec.id) {
            self.deadlines.remove(&(deadline, rec.id));
        }
    }

    /// Whether `attempt` on `worker` holds `id`'s lease.
    pub fn holds_lease(&self, id: &TaskId, attempt: u32, worker: &WorkerKey) -> bool {
        self.tasks.get(id).is_some_and(|r| {
            r.state == TaskState::Running
                && r.attempt == attempt
                && r.worker.as_ref() == Some(worker)
        })
    }

    /// A worker reports how an attempt ended.
    pub fn complete(
        &mut self,
        id: &TaskId,
        attempt: u32,
        worker: &WorkerKey,
        status: TaskStatus,
        now: u64,
    ) -> Completion {
        if !self.holds_lease(id, attempt, worker) {
            return Completion::Stale;
        }
        let mut rec = self.tasks.remove(id).expect("leased task is live");
        self.release(&rec, worker);
        rec.updated_ms = now;
        rec.refused = 0;
        rec.attempt_ended(now, status.as_str());
        if status != TaskStatus::Succeeded && rec.failures < rec.spec.retries {
            rec.worker = None;
            rec.failures += 1;
            rec.state = TaskState::Queued;
            let shift = (rec.failures - 1).min(20);
            let delay = (self.cfg.backoff_base_ms << shift).min(self.cfg.backoff_max_ms);
            rec.not_before_ms = now + delay.max(1);
            self.enqueue(rec.clone());
            return Completion::Retry(rec);
        }
        // The record keeps the worker that produced the result.
        rec.state = TaskState::Done;
        rec.status = Some(status);
        rec.dead_letter = status != TaskStatus::Succeeded;
        Completion::Final(rec)
    }

    /// Cancels a live task. Returns its final record and, if it was
    /// running, the worker and attempt to tell. A cold task must be
    /// hydrated first (`None` until then).
    pub fn cancel(
        &mut self,
        id: &TaskId,
        now: u64,
    ) -> Option<(TaskRecord, Option<(WorkerKey, u32)>)> {
        let mut rec = self.tasks.remove(id)?;
        self.queue.remove(&rec);
        let mut running = None;
        if rec.state == TaskState::Running
            && let Some(wk) = rec.worker
        {
            self.release(&rec, &wk);
            running = Some((wk, rec.attempt));
            rec.attempt_ended(now, "cancelled");
        }
        rec.state = TaskState::Cancelled;
        rec.status = Some(TaskStatus::Cancelled);
        rec.worker = None;
        rec.updated_ms = now;
        Some((rec, running))
    }

    /// Leases held now: (task, attempt, worker). For checks and tests.
    pub fn leases(&self) -> Vec<(TaskId, u32, WorkerKey)> {
        let mut out = Vec::new();
        for (wk, w) in &self.workers {
            for id in &w.leases {
                if let Some(r) = self.tasks.get(id) {
                    out.push((*id, r.attempt, *wk));
                }
            }
        }
        out
    }

    /// Records of live tasks (queued or running), in no particular order;
    /// cold tasks are not among them (see `live_states`, `cold_in`,
    /// `cold_blobs`).
    pub fn live_records(&self) -> impl Iterator<Item = &TaskRecord> {
        self.tasks.values()
    }

    /// Ids of live tasks, cold ones included. For checks and tests.
    pub fn live_ids(&self) -> impl Iterator<Item = &TaskId> {
        self.tasks.keys().chain(self.cold.keys())
    }
}

#[cfg(test)]
mod adopt_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod tests;
