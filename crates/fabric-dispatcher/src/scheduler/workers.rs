//! Workers coming, beating and going: registration (with the runs a
//! reconnecting worker still has), heartbeats, drains, removal and the
//! heartbeat deadline.

use std::collections::HashSet;

use fabric_proto::wire::{WorkerInfo, WorkerState};
use fabric_proto::{TaskId, WorkerKey};

use super::worker::Worker;
use super::{Change, Scheduler};

/// What a registration decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Registration {
    /// Runs the worker reported that hold no lease here: it must cancel
    /// them (their results would be stale).
    pub stray: Vec<(TaskId, u32)>,
    /// Leases the worker held before but did not report: those attempts
    /// are lost.
    pub changes: Vec<Change>,
}

/// What a tick decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Tasks requeued or given up: their workers died or their leases
    /// passed their deadline.
    pub changes: Vec<Change>,
    /// Workers declared dead: the service closes their connections; they
    /// must register afresh.
    pub dead: Vec<WorkerKey>,
}

impl Scheduler {
    /// Registers (or re-registers) a worker that says it still runs
    /// `running`. Leases it reports are kept (adopted); leases it does not
    /// report are lost; reported runs without a lease are stray. A drain
    /// sticks across a re-registration.
    pub fn add_worker(
        &mut self,
        key: WorkerKey,
        info: &WorkerInfo,
        running: &[(TaskId, u32)],
        now: u64,
    ) -> Registration {
        let (held, draining) = self
            .workers
            .remove(&key)
            .map(|w| (w.leases, w.draining))
            .unwrap_or_default();
        let reported: HashSet<(TaskId, u32)> = running.iter().copied().collect();
        let mut kept = HashSet::new();
        let mut lost = Vec::new();
        for id in held {
            match self.tasks.get(&id) {
                Some(r) if reported.contains(&(id, r.attempt)) => {
                    kept.insert(id);
                }
                Some(_) => lost.push(id),
                None => {}
            }
        }
        kept.extend(self.adopt_first_attempts(key, &info.name, running, now));
        let stray: Vec<(TaskId, u32)> = running
            .iter()
            .filter(|(id, _)| !kept.contains(id))
            .copied()
            .collect();
        let used_memory = kept
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .map(|r| r.spec.limits.memory_bytes)
            .sum();
        let mut worker = Worker::new(info, kept, used_memory, now);
        worker.draining = draining;
        worker.busy = stray.len() as u32;
        self.workers.insert(key, worker);
        lost.sort();
        let mut changes = Vec::new();
        for id in lost {
            let rec = self.tasks.remove(&id).expect("held lease is live");
            self.release(&rec, &key);
            changes.push(self.lose(rec, "its worker no longer ran it after reconnecting", now));
        }
        // A new worker may run what nobody could.
        self.queue.unpark_all();
        Registration { stray, changes }
    }

    /// Records a heartbeat with the worker's count of runs in flight; false
    /// for an unknown worker (declared dead: it must register afresh).
    pub fn heartbeat(&mut self, key: &WorkerKey, running: u32, now: u64) -> bool {
        match self.workers.get_mut(key) {
            Some(w) => {
                w.last_seen = now;
                // Stray runs end; new leases never make it busier.
                let leased = w.leases.len() as u32;
                w.busy = w.busy.min(running.saturating_sub(leased));
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

    /// Its connection was lost (not closed): nothing new is placed on it,
    /// and its leases wait for it to register again (which adopts the runs
    /// it reports) until its heartbeats are overdue and it is declared dead.
    pub fn disconnect_worker(&mut self, key: &WorkerKey) {
        if let Some(w) = self.workers.get_mut(key) {
            w.connected = false;
        }
    }

    /// Whether a worker is draining.
    pub fn is_draining(&self, key: &WorkerKey) -> bool {
        self.workers.get(key).is_some_and(|w| w.draining)
    }

    /// Registered workers: key, slots, running, last heartbeat.
    pub fn workers(&self) -> impl Iterator<Item = (&WorkerKey, u32, u32, u64)> {
        self.workers
            .iter()
            .map(|(k, w)| (k, w.slots, w.leases.len() as u32, w.last_seen))
    }

    /// A registered worker's state.
    pub fn worker_state(&self, key: &WorkerKey) -> Option<WorkerState> {
        self.workers.get(key).map(|w| {
            if !w.connected {
                WorkerState::Down
            } else if w.draining {
                WorkerState::Draining
            } else {
                WorkerState::Ready
            }
        })
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
            if let Some(deadline) = self.lease_deadline.remove(&id) {
                self.deadlines.remove(&(deadline, id));
            }
            changes.push(self.lose(rec, "its worker died", now));
        }
        changes
    }

    /// Advances time: workers silent for too long are removed, leases past
    /// their deadline are lost (their tasks requeued), and retry delays that
    /// ran out make tasks ready.
    pub fn tick(&mut self, now: u64) -> Tick {
        let limit = self.cfg.heartbeat_ms * u64::from(self.cfg.missed_heartbeats);
        let mut dead: Vec<WorkerKey> = self
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_sub(w.last_seen) > limit)
            .map(|(k, _)| *k)
            .collect();
        dead.sort();
        let mut changes = Vec::new();
        for key in &dead {
            match self.workers.get(key) {
                Some(w) if w.awaited && w.leases.is_empty() => {}
                Some(w) if w.awaited => {
                    tracing::warn!(worker = %key.short(), "a worker of the former leader did not come back; requeueing its tasks")
                }
                _ => {
                    tracing::warn!(worker = %key.short(), "worker missed {} heartbeats; requeueing its tasks", self.cfg.missed_heartbeats)
                }
            }
            changes.extend(self.remove_worker(key, now));
        }
        changes.extend(self.expire_leases(now));
        for id in self.queue.due(now) {
            if let Some(rec) = self.tasks.get_mut(&id) {
                rec.not_before_ms = 0;
                // A delayed task's time came (`--delay`, `--at`).
                if rec.state == fabric_proto::TaskState::Scheduled {
                    rec.state = fabric_proto::TaskState::Queued;
                    rec.updated_ms = now;
                }
                self.queue.push(rec);
            } else {
                self.cold_due(&id, now);
            }
        }
        self.age(now);
        Tick { changes, dead }
    }
}
