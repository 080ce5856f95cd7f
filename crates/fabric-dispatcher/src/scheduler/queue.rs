//! Live tasks waiting for a worker: ready ones in priority then submission
//! order, delayed ones (in retry backoff, or scheduled) by the instant they
//! become ready. A task's rank is its priority's, less the steps it aged.

use std::collections::BTreeSet;
use std::ops::Bound;

use fabric_proto::{TaskId, TaskRecord};

/// A ready task's place: priority rank, submission sequence, id.
pub(super) type QueueKey = (u8, u64, TaskId);

fn queue_key(rec: &TaskRecord) -> QueueKey {
    (
        rec.spec.priority.rank().saturating_sub(rec.aged),
        rec.seq,
        rec.id,
    )
}

/// The queue. It holds keys only; the records live in the scheduler.
#[derive(Debug, Default)]
pub(super) struct Queue {
    ready: BTreeSet<QueueKey>,
    delayed: BTreeSet<(u64, TaskId)>,
    /// Ready tasks no registered worker could ever run (kind, memory):
    /// kept out of placement's walk until a worker registers.
    parked: BTreeSet<QueueKey>,
}

impl Queue {
    /// Queues a task: delayed while `not_before_ms` is set, else ready.
    pub(super) fn push(&mut self, rec: &TaskRecord) {
        self.push_parts(rec.not_before_ms, queue_key(rec));
    }

    /// [`Queue::push`] of a task known by its delay and queue key.
    pub(super) fn push_parts(&mut self, not_before_ms: u64, key: QueueKey) {
        if not_before_ms > 0 {
            self.delayed.insert((not_before_ms, key.2));
        } else {
            self.ready.insert(key);
        }
    }

    /// Rebuilds the sets with full nodes: inserted in order (a restart
    /// files a million tasks in queue order), a B-tree leaves each node half
    /// empty; built at once from sorted keys, it fills them.
    pub(super) fn compact(&mut self) {
        self.ready = std::mem::take(&mut self.ready).into_iter().collect();
        self.delayed = std::mem::take(&mut self.delayed).into_iter().collect();
        self.parked = std::mem::take(&mut self.parked).into_iter().collect();
    }

    /// Takes a task out, wherever it waits.
    pub(super) fn remove(&mut self, rec: &TaskRecord) {
        self.remove_parts(rec.not_before_ms, queue_key(rec));
    }

    /// [`Queue::remove`] of a task known by its delay and queue key.
    pub(super) fn remove_parts(&mut self, not_before_ms: u64, key: QueueKey) {
        self.ready.remove(&key);
        self.parked.remove(&key);
        self.delayed.remove(&(not_before_ms, key.2));
    }

    /// Moves a ready task aside: no worker could run it.
    pub(super) fn park(&mut self, key: &QueueKey) {
        if self.ready.remove(key) {
            self.parked.insert(*key);
        }
    }

    /// Makes every parked task ready again (a worker registered).
    pub(super) fn unpark_all(&mut self) {
        self.ready.append(&mut self.parked);
    }

    /// Takes a ready task out (it was leased).
    pub(super) fn take(&mut self, key: &QueueKey) {
        self.ready.remove(key);
    }

    /// Tasks waiting, ready, parked or delayed.
    pub(super) fn len(&self) -> usize {
        self.ready.len() + self.parked.len() + self.delayed.len()
    }

    /// The first ready task after `cursor` (from the start for `None`), so
    /// placement walks the queue in order without copying it.
    pub(super) fn next_after(&self, cursor: Option<QueueKey>) -> Option<QueueKey> {
        match cursor {
            None => self.ready.iter().next().copied(),
            Some(c) => self
                .ready
                .range((Bound::Excluded(c), Bound::Unbounded))
                .next()
                .copied(),
        }
    }

    /// The first ready task at or after `key`.
    pub(super) fn first_from(&self, key: QueueKey) -> Option<QueueKey> {
        self.ready.range(key..).next().copied()
    }

    /// Ready tasks of queue rank `rank`, oldest first.
    pub(super) fn ready_of_rank(&self, rank: u8) -> impl Iterator<Item = QueueKey> + '_ {
        let first = (rank, 0, TaskId::from_bytes([0; 16]));
        self.ready
            .range(first..)
            .take_while(move |k| k.0 == rank)
            .copied()
    }

    /// Delayed tasks whose delay ran out by `now`, taken off the delayed
    /// set; the caller clears their delay and pushes them again.
    pub(super) fn due(&mut self, now: u64) -> Vec<TaskId> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            due.push(id);
        }
        due
    }
}
