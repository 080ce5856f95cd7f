//! A new leader of a group of dispatchers (issue 26) takes over the runs
//! its predecessor handed out. Unlike a restart, the workers did not stop:
//! a task that was running keeps running on its worker, and the new leader
//! adopts the run when the worker registers with it (reporting what it
//! runs), as after a lost connection.
//!
//! - A lease the store holds (every attempt but a task's first is written
//!   before it goes out) stays with its worker, which is awaited: it must
//!   register within [`AWAIT_MS`] or its leases are lost, as a dead
//!   worker's are.
//! - A task's first attempt goes out unwritten, so the store says queued:
//!   a worker that reports attempt 1 of a task still queued here, not
//!   placed since, gets it adopted (no other attempt 1 can exist: a
//!   restored task's next attempt is 2).
//! - Placement waits (at most [`AWAIT_MS`]) until the workers the store
//!   knows have registered, so those first attempts are adopted rather
//!   than placed again.

use std::collections::HashSet;

use fabric_proto::{TaskId, TaskRecord, TaskState, WorkerKey};

use super::worker::Worker;
use super::{Change, Scheduler};

/// How long a new leader waits for the workers of its predecessor.
pub const AWAIT_MS: u64 = 5_000;

impl Scheduler {
    /// Reloads unfinished tasks when this dispatcher takes over its
    /// group's queue: running tasks keep their leases on their (awaited)
    /// workers; everything else as [`Scheduler::restore`]. `workers` are
    /// the workers the store knows (registered with the former leader).
    pub fn take_over(
        &mut self,
        records: Vec<TaskRecord>,
        workers: &[WorkerKey],
        now: u64,
    ) -> Vec<Change> {
        let until = now + AWAIT_MS;
        for key in workers {
            self.workers
                .entry(*key)
                .or_insert_with(|| Worker::awaited(until));
        }
        let mut rest = Vec::new();
        for rec in records {
            match (rec.state, rec.worker) {
                (TaskState::Running, Some(wk)) => {
                    let w = self
                        .workers
                        .entry(wk)
                        .or_insert_with(|| Worker::awaited(until));
                    w.leases.insert(rec.id);
                    w.used_memory += rec.spec.limits.memory_bytes;
                    let deadline = now + rec.spec.limits.timeout_ms + self.cfg.lease_grace_ms;
                    self.deadlines.insert((deadline, rec.id));
                    self.lease_deadline.insert(rec.id, deadline);
                    self.tasks.insert(rec.id, rec);
                }
                (TaskState::Queued, _) if rec.attempt == 0 => {
                    self.adoptable.insert(rec.id);
                    rest.push(rec);
                }
                _ => rest.push(rec),
            }
        }
        self.hold_until = until;
        self.restore(rest, now)
    }

    /// Whether placement waits for awaited workers.
    pub(super) fn holding(&self, now: u64) -> bool {
        now < self.hold_until && self.workers.values().any(|w| w.awaited)
    }

    /// Adopts, for `worker` registering, the reported runs that are first
    /// attempts of tasks still queued here (see the module's note); the
    /// adopted ids.
    pub(super) fn adopt_first_attempts(
        &mut self,
        worker: WorkerKey,
        name: &str,
        running: &[(TaskId, u32)],
        now: u64,
    ) -> HashSet<TaskId> {
        let mut adopted = HashSet::new();
        for &(id, attempt) in running {
            if attempt != 1 || !self.adoptable.remove(&id) {
                continue;
            }
            let Some(rec) = self.tasks.get(&id) else {
                continue;
            };
            if rec.state != TaskState::Queued || rec.attempt != 1 || rec.worker.is_some() {
                continue;
            }
            let queued = rec.clone();
            self.queue.remove(&queued);
            let rec = self.tasks.get_mut(&id).expect("checked");
            rec.state = TaskState::Running;
            rec.worker = Some(worker);
            rec.updated_ms = now;
            rec.attempt_started(worker, Some(name.to_owned()), now);
            let deadline = now + rec.spec.limits.timeout_ms + self.cfg.lease_grace_ms;
            self.deadlines.insert((deadline, id));
            self.lease_deadline.insert(id, deadline);
            adopted.insert(id);
        }
        adopted
    }
}
