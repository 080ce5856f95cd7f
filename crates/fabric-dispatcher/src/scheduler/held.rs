//! Tasks held back until the tasks they run after succeed (`--after`):
//! live (status, lists and cancel see them) but not queued. Which task
//! waits on which is the dispatcher's `service::deps`; this room only
//! moves a held task to the queue or ends it as skipped.

use fabric_proto::{TaskId, TaskRecord, TaskState};

use super::Scheduler;

impl Scheduler {
    /// Holds a task that waits for others (state `Waiting`): live, so
    /// status, lists and cancel see it, but not queued.
    pub fn hold(&mut self, rec: TaskRecord) {
        debug_assert_eq!(rec.state, TaskState::Waiting);
        self.tasks.insert(rec.id, rec);
    }

    /// Queues a held task whose parents all succeeded; its record, now
    /// `Queued`, to be written.
    pub fn release_waiting(&mut self, id: &TaskId, now: u64) -> Option<TaskRecord> {
        self.release_waiting_with(id, now, |_| {})
    }

    /// [`Scheduler::release_waiting`], `fill` changing the record (its
    /// input) before it is queued.
    pub fn release_waiting_with(
        &mut self,
        id: &TaskId,
        now: u64,
        fill: impl FnOnce(&mut TaskRecord),
    ) -> Option<TaskRecord> {
        let rec = self.tasks.get_mut(id)?;
        if rec.state != TaskState::Waiting {
            return None;
        }
        // A delay not yet run out (`--delay` with `--after`) holds it on.
        rec.state = if rec.not_before_ms > now {
            TaskState::Scheduled
        } else {
            rec.not_before_ms = 0;
            TaskState::Queued
        };
        rec.updated_ms = now;
        fill(rec);
        let rec = rec.clone();
        self.queue.push(&rec);
        Some(rec)
    }

    /// Ends a held task as `skipped` (a parent did not succeed); its final
    /// record, to be written with its result.
    pub fn skip(&mut self, id: &TaskId, now: u64) -> Option<TaskRecord> {
        if self.tasks.get(id)?.state != TaskState::Waiting {
            return None;
        }
        let mut rec = self.tasks.remove(id)?;
        rec.state = TaskState::Done;
        rec.status = Some(fabric_proto::TaskStatus::Skipped);
        rec.updated_ms = now;
        Some(rec)
    }
}
