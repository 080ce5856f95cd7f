//! The scheduler: a plain state machine over live tasks and workers.
//!
//! No I/O, no clocks, no threads: every method takes `now` (ms since the
//! epoch) and returns the task records it changed, which the service then
//! writes to the store. Property tests drive it directly.

use std::collections::HashMap;

pub use fabric_proto::WorkerKey;
use fabric_proto::wire::WorkerInfo;
use fabric_proto::{TaskId, TaskRecord, TaskState, TaskStatus};

mod queue;
mod worker;

use queue::Queue;
use worker::Worker;

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
}

impl Default for SchedConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 1_000,
            missed_heartbeats: 3,
            backoff_base_ms: 250,
            backoff_max_ms: 30_000,
            max_lost: 5,
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

/// A record that changed, and whether the change finished the task.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// Save the record; the task lives on.
    Save(TaskRecord),
    /// The task is finished without a result from a worker (lost too many
    /// times); record a synthetic outcome with this message.
    Give(TaskRecord, String),
}

/// Live tasks, the queue, workers and leases.
#[derive(Debug, Default)]
pub struct Scheduler {
    cfg: SchedConfig,
    tasks: HashMap<TaskId, TaskRecord>,
    queue: Queue,
    workers: HashMap<WorkerKey, Worker>,
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
    /// restart are void (their workers have to re-register); those tasks go
    /// back to the queue, and the changed records are returned.
    pub fn restore(&mut self, records: Vec<TaskRecord>, now: u64) -> Vec<TaskRecord> {
        let mut changed = Vec::new();
        for mut rec in records {
            if rec.state == TaskState::Running {
                rec.state = TaskState::Queued;
                rec.worker = None;
                rec.lost += 1;
                rec.updated_ms = now;
                changed.push(rec.clone());
            }
            self.enqueue(rec);
        }
        changed
    }

    fn enqueue(&mut self, rec: TaskRecord) {
        self.queue.push(&rec);
        self.tasks.insert(rec.id, rec);
    }

    /// Adds a newly admitted task (state `Queued`).
    pub fn submit(&mut self, rec: TaskRecord) {
        debug_assert_eq!(rec.state, TaskState::Queued);
        self.enqueue(rec);
    }

    /// A live task.
    pub fn task(&self, id: &TaskId) -> Option<&TaskRecord> {
        self.tasks.get(id)
    }

    /// Number of live (queued or running) tasks.
    pub fn live(&self) -> usize {
        self.tasks.len()
    }

    /// Number of tasks waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Registers (or re-registers) a worker.
    pub fn add_worker(&mut self, key: WorkerKey, info: &WorkerInfo, now: u64) {
        let leases = self
            .workers
            .remove(&key)
            .map(|w| w.leases)
            .unwrap_or_default();
        let used_memory = leases
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .map(|r| r.spec.limits.memory_bytes)
            .sum();
        self.workers
            .insert(key, Worker::new(info, leases, used_memory, now));
    }

    /// Records a heartbeat; false for an unknown worker.
    pub fn heartbeat(&mut self, key: &WorkerKey, now: u64) -> bool {
        match self.workers.get_mut(key) {
            Some(w) => {
                w.last_seen = now;
                true
            }
            None => false,
        }
    }

    /// Stops placing new work on a worker.
    pub fn drain_worker(&mut self, key: &WorkerKey) {
        if let Some(w) = self.workers.get_mut(key) {
            w.draining = true;
        }
    }

    /// Registered workers: key, slots, running, last heartbeat.
    pub fn workers(&self) -> impl Iterator<Item = (&WorkerKey, u32, u32, u64)> {
        self.workers
            .iter()
            .map(|(k, w)| (k, w.slots, w.leases.len() as u32, w.last_seen))
    }

    /// Whether a worker is registered.
    pub fn has_worker(&self, key: &WorkerKey) -> bool {
        self.workers.contains_key(key)
    }

    /// Forgets a worker; its leased tasks go back to the queue (or, lost
    /// too often, finish as failed).
    pub fn remove_worker(&mut self, key: &WorkerKey, now: u64) -> Vec<Change> {
        let Some(worker) = self.workers.remove(key) else {
            return Vec::new();
        };
        let mut lost: Vec<_> = worker.leases.into_iter().collect();
        lost.sort();
        let mut changes = Vec::new();
        for id in lost {
            let Some(rec) = self.tasks.remove(&id) else {
                continue;
            };
            changes.push(self.lose(rec, "its worker died", now));
        }
        changes
    }

    /// Advances time: workers silent for too long are removed (their tasks
    /// requeued); retry delays that ran out make tasks ready.
    pub fn tick(&mut self, now: u64) -> Vec<Change> {
        let limit = self.cfg.heartbeat_ms * u64::from(self.cfg.missed_heartbeats);
        let mut dead: Vec<WorkerKey> = self
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_sub(w.last_seen) > limit)
            .map(|(k, _)| *k)
            .collect();
        dead.sort();
        let mut changes = Vec::new();
        for key in dead {
            tracing::warn!(worker = %key.short(), "worker missed {} heartbeats; requeueing its tasks", self.cfg.missed_heartbeats);
            changes.extend(self.remove_worker(&key, now));
        }
        for id in self.queue.due(now) {
            if let Some(rec) = self.tasks.get_mut(&id) {
                rec.not_before_ms = 0;
                self.queue.push(rec);
            }
        }
        changes
    }

    /// Places ready tasks on workers with room, highest priority first and
    /// FIFO within a priority. Returns the leased records (state
    /// `Running`, attempt incremented, worker set).
    pub fn place(&mut self, now: u64) -> Vec<TaskRecord> {
        let mut leased = Vec::new();
        let mut cursor = None;
        loop {
            if !self
                .workers
                .values()
                .any(|w| w.free_slots() > 0 && !w.draining)
            {
                break;
            }
            // Walk the queue in order without copying it; tasks that fit no
            // worker stay where they are and do not block those behind.
            let Some(key) = self.queue.next_after(cursor) else {
                break;
            };
            cursor = Some(key);
            let rec = &self.tasks[&key.2];
            let best = self
                .workers
                .iter()
                .filter(|(_, w)| w.fits(rec))
                .max_by_key(|(k, w)| (w.free_slots(), std::cmp::Reverse(**k)))
                .map(|(k, _)| *k);
            let Some(wk) = best else {
                continue;
            };
            self.queue.take(&key);
            let rec = self.tasks.get_mut(&key.2).expect("queued task is live");
            rec.state = TaskState::Running;
            rec.attempt += 1;
            rec.worker = Some(wk);
            rec.updated_ms = now;
            let w = self.workers.get_mut(&wk).expect("chosen worker exists");
            w.leases.insert(rec.id);
            w.used_memory += rec.spec.limits.memory_bytes;
            leased.push(rec.clone());
        }
        leased
    }

    /// Frees the worker's slot and memory held by the lease of `rec`.
    fn release(&mut self, rec: &TaskRecord, worker: &WorkerKey) {
        if let Some(w) = self.workers.get_mut(worker)
            && w.leases.remove(&rec.id)
        {
            w.used_memory = w.used_memory.saturating_sub(rec.spec.limits.memory_bytes);
        }
    }

    fn holds_lease(&self, id: &TaskId, attempt: u32, worker: &WorkerKey) -> bool {
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

    /// An attempt ended without a result of the task's own (its stream
    /// broke, or the worker refused it): the attempt counts as lost, not as
    /// a failure, and the task is requeued.
    /// `None` when the attempt no longer holds the lease.
    pub fn abandon(
        &mut self,
        id: &TaskId,
        attempt: u32,
        worker: &WorkerKey,
        reason: &str,
        now: u64,
    ) -> Option<Change> {
        if !self.holds_lease(id, attempt, worker) {
            return None;
        }
        let rec = self.tasks.remove(id).expect("leased task is live");
        self.release(&rec, worker);
        Some(self.lose(rec, reason, now))
    }

    /// An attempt was lost (with its worker or its stream): requeue the
    /// task without using its retry budget, or give it up when lost too
    /// often.
    fn lose(&mut self, mut rec: TaskRecord, reason: &str, now: u64) -> Change {
        rec.lost += 1;
        rec.worker = None;
        rec.updated_ms = now;
        if rec.lost >= self.cfg.max_lost {
            rec.state = TaskState::Done;
            rec.status = Some(TaskStatus::Failed);
            rec.dead_letter = true;
            let msg = format!(
                "gave up after {} lost attempts; the last: {reason}",
                rec.lost
            );
            return Change::Give(rec, msg);
        }
        rec.state = TaskState::Queued;
        rec.not_before_ms = 0;
        self.enqueue(rec.clone());
        Change::Save(rec)
    }

    /// Cancels a live task. Returns its final record and, if it was
    /// running, the worker and attempt to tell.
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

    /// Records of live tasks (queued or running), in no particular order.
    pub fn live_records(&self) -> impl Iterator<Item = &TaskRecord> {
        self.tasks.values()
    }

    /// Ids of live tasks. For checks and tests.
    pub fn live_ids(&self) -> impl Iterator<Item = &TaskId> {
        self.tasks.keys()
    }
}

#[cfg(test)]
mod tests;
