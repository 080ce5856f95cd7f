//! Attempts that end without a result of the task's own: lost (stream
//! broke, worker died, lease deadline passed), refused by the worker, or
//! undone because their write failed.

use fabric_proto::{TaskId, TaskRecord, TaskState, TaskStatus, WorkerKey};

use super::{Change, Scheduler};

impl Scheduler {
    /// An attempt's stream broke before a report: the attempt is lost (no
    /// retry budget used) and the task requeued. `None` when the attempt no
    /// longer holds the lease.
    pub fn abandon(
        &mut self,
        id: &TaskId,
        attempt: u32,
        worker: &WorkerKey,
        reason: &str,
        now: u64,
    ) -> Option<Change> {
        let rec = self.take_lease(id, attempt, worker)?;
        Some(self.lose(rec, reason, now))
    }

    /// Takes the task out of the scheduler if `attempt` on `worker` holds
    /// its lease, freeing the slot.
    fn take_lease(&mut self, id: &TaskId, attempt: u32, worker: &WorkerKey) -> Option<TaskRecord> {
        if !self.holds_lease(id, attempt, worker) {
            return None;
        }
        let rec = self.tasks.remove(id).expect("leased task is live");
        self.release(&rec, worker);
        Some(rec)
    }

    /// A lease that could not be made durable never went out: the task goes
    /// back to the queue, nothing counted against it, offered again after
    /// `delay_ms` so a failing store is not hammered. Its attempt number is
    /// kept (the write may still reach the disk), so the next lease has a
    /// higher one. Whether `attempt` held the lease.
    pub fn unlease(
        &mut self,
        id: &TaskId,
        attempt: u32,
        worker: &WorkerKey,
        delay_ms: u64,
        now: u64,
    ) -> bool {
        let Some(mut rec) = self.take_lease(id, attempt, worker) else {
            return false;
        };
        rec.attempt_ended(now, "not sent: its lease could not be recorded");
        rec.worker = None;
        rec.state = TaskState::Queued;
        rec.not_before_ms = now + delay_ms.max(1);
        self.enqueue(rec);
        true
    }

    /// The worker refused the attempt (draining, module did not load): the
    /// task waits a backoff that doubles per refusal in a row, then is
    /// offered again; no budget is used, but a task refused too often is
    /// given up. `None` when the attempt no longer holds the lease.
    pub fn refuse(
        &mut self,
        id: &TaskId,
        attempt: u32,
        worker: &WorkerKey,
        reason: &str,
        now: u64,
    ) -> Option<Change> {
        let mut rec = self.take_lease(id, attempt, worker)?;
        rec.attempt_ended(now, format!("refused: {reason}"));
        rec.refused += 1;
        rec.worker = None;
        rec.updated_ms = now;
        if rec.refused >= self.cfg.max_refused {
            let msg = format!(
                "gave up after {} refusals in a row; the last: {reason}",
                rec.refused
            );
            return Some(self.give_up(rec, msg));
        }
        let shift = (rec.refused - 1).min(20);
        let delay = (self.cfg.refusal_backoff_ms << shift).min(self.cfg.backoff_max_ms);
        rec.state = TaskState::Queued;
        rec.not_before_ms = now + delay.max(1);
        self.enqueue(rec.clone());
        Some(Change::Refused(rec, reason.to_owned()))
    }

    /// Leases whose deadline passed without a report: lost.
    pub(super) fn expire_leases(&mut self, now: u64) -> Vec<Change> {
        let mut changes = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let Some(worker) = self.tasks.get(&id).and_then(|r| r.worker) else {
                self.deadlines.pop_first();
                self.lease_deadline.remove(&id);
                continue;
            };
            let rec = self.tasks.remove(&id).expect("leased task is live");
            self.release(&rec, &worker);
            tracing::warn!(task = %id, attempt = rec.attempt, "lease passed its deadline without a report");
            let reason = "its lease passed the task's timeout plus the grace without a report";
            changes.push(self.lose(rec, reason, now));
        }
        changes
    }

    /// An attempt was lost: requeue the task at once without using its
    /// retry budget, or give it up when lost too often.
    pub(super) fn lose(&mut self, mut rec: TaskRecord, reason: &str, now: u64) -> Change {
        rec.attempt_ended(now, format!("lost: {reason}"));
        rec.lost += 1;
        rec.worker = None;
        rec.updated_ms = now;
        if rec.lost >= self.cfg.max_lost {
            let msg = format!(
                "gave up after {} lost attempts; the last: {reason}",
                rec.lost
            );
            return self.give_up(rec, msg);
        }
        rec.state = TaskState::Queued;
        rec.not_before_ms = 0;
        self.enqueue(rec.clone());
        Change::Lost(rec, reason.to_owned())
    }

    fn give_up(&mut self, mut rec: TaskRecord, msg: String) -> Change {
        rec.state = TaskState::Done;
        rec.status = Some(TaskStatus::Failed);
        rec.dead_letter = true;
        Change::Give(rec, msg)
    }

    /// Puts a task back as it was before a change whose write failed
    /// (`complete`, `cancel`): memory then agrees with the store again. A
    /// running record takes its lease back if its worker is still here;
    /// otherwise that attempt is lost.
    pub fn reinstate(&mut self, rec: TaskRecord, now: u64) -> Option<Change> {
        self.drop_cold(&rec.id);
        if let Some(current) = self.tasks.remove(&rec.id) {
            self.queue.remove(&current);
            if let Some(w) = current.worker {
                self.release(&current, &w);
            }
        }
        match (rec.state, rec.worker) {
            (TaskState::Running, Some(wk)) if self.workers.contains_key(&wk) => {
                let deadline = now + rec.spec.limits.timeout_ms + self.cfg.lease_grace_ms;
                let w = self.workers.get_mut(&wk).expect("checked");
                w.leases.insert(rec.id);
                w.used_memory += rec.spec.limits.memory_bytes;
                self.deadlines.insert((deadline, rec.id));
                self.lease_deadline.insert(rec.id, deadline);
                self.tasks.insert(rec.id, rec);
                None
            }
            (TaskState::Running, _) => Some(self.lose(rec, "its worker went away", now)),
            _ => {
                self.enqueue(rec);
                None
            }
        }
    }

    /// When a task's lease runs out, if it holds one.
    pub fn lease_deadline(&self, id: &TaskId) -> Option<u64> {
        self.lease_deadline.get(id).copied()
    }
}
