//! Queued tasks held slim ("cold"): those reloaded by a restart, and
//! those submitted while the queue is deep ([`Scheduler::submit_stored`]).
//!
//! A whole [`TaskRecord`] takes about 600 bytes in memory, so a restart
//! with a million queued tasks would hold 1.4 GB and spend most of its
//! time allocating (issue 27 asks for under 5 s and 500 MB). A cold entry
//! keeps what the queue, aging, counts and retention read of a task that
//! waits, about 100 bytes. Placement never leases a cold task: when one
//! reaches the head of the queue, [`Scheduler::place`] stops there and
//! names it (with the cold tasks right behind it) in [`Scheduler::wanted`];
//! the service reads their records back from the store and hands them to
//! [`Scheduler::hydrate`], then places again. Anything else that needs a
//! cold task's whole record (a cancel, a listing) reads it the same way.
//!
//! A cold entry differs from its stored record only where the scheduler
//! changed it in memory since it was made (at a restart or a submit): the
//! skipped attempt number after a restart (see [`Scheduler::restore`]),
//! aging, and a delay that ran out. Those
//! are laid over the stored record when it is read back.

use fabric_proto::{Priority, QueuedRecord, Sha256, TaskId, TaskKind, TaskRecord, TaskState};

use super::Scheduler;
use super::queue::QueueKey;
use super::worker::Need;

/// A queued task held without its record.
#[derive(Debug)]
pub(super) struct Cold {
    pub seq: u64,
    pub submitted_ms: u64,
    /// When its delay ends (0: ready), as `TaskRecord::not_before_ms`.
    pub not_before_ms: u64,
    /// The delay it was submitted with, for aging.
    /// (0: none; a delay is an instant after the epoch.)
    pub spec_not_before_ms: u64,
    pub attempt: u32,
    pub aged: u8,
    pub state: TaskState,
    /// When the scheduler last changed it (a delay ran out), if it did.
    /// (0: not changed.)
    pub updated_ms: u64,
    pub priority: Priority,
    /// Blobs it needs (module, staged files, input, args): retention keeps
    /// them.
    pub blobs: Blobs,
    /// Its trace when it belongs to a job (`job-...`), for the job count.
    pub job: Option<Box<str>>,
    /// Memory it asks for, for placement.
    pub memory: u64,
    /// The program (a native task) and the labels it requires, when it
    /// has either: most tasks have neither, and hold nothing here.
    pub rare: Option<Box<Rare>>,
}

/// The blobs a cold task needs. Most need one, their module: kept in the
/// entry, not in an allocation of its own (32 bytes less a task).
#[derive(Debug)]
pub(super) enum Blobs {
    One(Sha256),
    Many(Box<[Sha256]>),
}

impl Blobs {
    fn of(blobs: Vec<Sha256>) -> Self {
        match blobs[..] {
            [one] => Self::One(one),
            _ => Self::Many(blobs.into_boxed_slice()),
        }
    }

    pub(super) fn iter(&self) -> std::slice::Iter<'_, Sha256> {
        match self {
            Self::One(one) => std::slice::from_ref(one).iter(),
            Self::Many(many) => many.iter(),
        }
    }
}

/// The program a native task runs and the labels a task requires.
type Rare = (Option<Box<str>>, Box<[String]>);

impl Cold {
    fn new(r: QueuedRecord) -> Self {
        let extra = [r.spec.input_blob, r.args_blob].map(|b| b.map(|b| b.sha));
        let (blobs, program) = match r.spec.kind {
            // The common case: one module, nothing else (no list made).
            TaskKind::Wasm { module } if extra == [None, None] => (Blobs::One(module), None),
            TaskKind::Wasm { module } => {
                let all = std::iter::once(module).chain(extra.into_iter().flatten());
                (Blobs::of(all.collect()), None)
            }
            TaskKind::Command { files, program, .. } => {
                let all = files.iter().map(|f| f.blob.sha);
                let all = all.chain(extra.into_iter().flatten()).collect();
                (Blobs::of(all), Some(program.into_boxed_str()))
            }
        };
        let rare = (program.is_some() || !r.spec.require.is_empty())
            .then(|| Box::new((program, r.spec.require.into_boxed_slice())));
        Self {
            seq: r.seq,
            submitted_ms: r.submitted_ms,
            not_before_ms: r.not_before_ms,
            spec_not_before_ms: r.spec.not_before_ms.unwrap_or(0),
            attempt: r.attempt,
            aged: r.aged,
            state: r.state,
            updated_ms: 0,
            priority: r.spec.priority,
            blobs,
            job: r.spec.job.map(String::into_boxed_str),
            memory: r.spec.limits.memory_bytes,
            rare,
        }
    }

    /// What placement checks it against.
    pub(super) fn need(&self) -> Need<'_> {
        let (program, require) = match self.rare.as_deref() {
            Some((program, require)) => (program.as_deref(), &require[..]),
            None => (None, &[][..]),
        };
        Need {
            memory: self.memory,
            program,
            require,
        }
    }

    /// What changed in memory since the entry was made, laid over the stored
    /// record.
    fn lay_over(&self, rec: &mut TaskRecord) {
        rec.attempt = self.attempt;
        rec.aged = self.aged;
        rec.not_before_ms = self.not_before_ms;
        rec.state = self.state;
        if self.updated_ms > 0 {
            rec.updated_ms = self.updated_ms;
        }
    }

    /// Its place in the ready queue.
    pub(super) fn key(&self, id: TaskId) -> QueueKey {
        (self.priority.rank().saturating_sub(self.aged), self.seq, id)
    }
}

/// Most cold tasks read back for one placement pass.
const MAX_WANTED: usize = 1_024;

/// A queued task read back by a restart, made into its cold entry (on the
/// store's reader threads: the scheduler's thread only files it).
#[derive(Debug)]
pub struct ColdTask(TaskId, Box<Cold>);

impl ColdTask {
    /// The cold entry of a task that waits in the queue; a task in any
    /// other state is given back by id (it is read whole).
    pub fn of(rec: QueuedRecord) -> Result<Self, TaskId> {
        if !rec.waits_in_queue() {
            return Err(rec.id);
        }
        let id = rec.id;
        let mut cold = Cold::new(rec);
        // See [`Scheduler::restore`] for the attempt number it skips.
        if cold.attempt == 0 {
            cold.attempt = 1;
        }
        Ok(Self(id, Box::new(cold)))
    }
}

impl ColdTask {
    /// The cold entry of a task just submitted, as its record is stored
    /// (its attempt number kept: nothing ran); `None` unless it waits in
    /// the queue.
    pub(crate) fn submitted(rec: &fabric_proto::TaskRecord) -> Option<Self> {
        let q = QueuedRecord::of(rec);
        q.waits_in_queue()
            .then(|| Self(rec.id, Box::new(Cold::new(q))))
    }
}

impl Scheduler {
    /// Reloads one queued task after a restart, cold (see
    /// [`Scheduler::restore`] for the attempt number it skips). A restart
    /// makes the entries on the store's threads and files them
    /// ([`Scheduler::file_cold`]); this does both, for tests.
    #[cfg(test)]
    pub fn restore_cold(&mut self, rec: QueuedRecord) {
        debug_assert!(rec.waits_in_queue());
        if let Ok(task) = ColdTask::of(rec) {
            self.file_cold(task);
        }
    }

    /// Makes room for about `n` cold tasks before a restart files them (a
    /// map grown one doubling at a time rehashes a million entries at the
    /// end). Capped at the queue's bound.
    pub fn expect_cold(&mut self, n: usize, max: usize) {
        self.cold.reserve(n.min(max));
    }

    /// After a restart filed its cold tasks: packs the queue (see
    /// `Queue::compact`).
    pub fn compact_queue(&mut self) {
        self.queue.compact();
    }

    /// Files a queued task made cold by [`ColdTask::of`] (a restart) or
    /// [`ColdTask::submitted`] (a deep queue).
    pub fn file_cold(&mut self, ColdTask(id, cold): ColdTask) {
        self.queue.push_parts(cold.not_before_ms, cold.key(id));
        self.cold.insert(id, cold);
    }

    /// Whether `id` is held cold (its record must be read back before
    /// anything but counting touches it).
    pub fn is_cold(&self, id: &TaskId) -> bool {
        self.cold.contains_key(id)
    }

    /// How many tasks are held cold.
    pub fn cold_count(&self) -> usize {
        self.cold.len()
    }

    /// Lays what changed in memory of a cold task over its stored record
    /// (for a view: the task stays cold); whether `rec` is a cold task.
    pub fn overlay_cold(&self, rec: &mut TaskRecord) -> bool {
        let Some(cold) = self.cold.get(&rec.id) else {
            return false;
        };
        cold.lay_over(rec);
        true
    }

    /// Cold tasks placement reached and needs whole, in queue order; taken
    /// (the list empties).
    pub fn wanted(&mut self) -> Vec<TaskId> {
        std::mem::take(&mut self.wanted)
    }

    /// Names the cold task at `key` and the cold ones right behind it in
    /// the ready queue (as many as there are free slots), for placement.
    pub(super) fn want_from(&mut self, key: QueueKey) {
        let free: u32 = self
            .workers
            .values()
            .filter(|w| w.open())
            .map(|w| w.free_slots())
            .sum();
        let room = (free as usize).clamp(1, MAX_WANTED);
        let mut wanted = vec![key.2];
        let mut cursor = key;
        while wanted.len() < room {
            let Some(next) = self.queue.next_after(Some(cursor)) else {
                break;
            };
            cursor = next;
            if self.cold.contains_key(&next.2) {
                wanted.push(next.2);
            }
        }
        self.wanted = wanted;
    }

    /// Takes a cold task's record as read back from the store, with what
    /// changed in memory laid over it; it is then an ordinary queued task.
    /// False (and nothing changes) if `rec` is not a cold task.
    pub fn hydrate(&mut self, mut rec: TaskRecord) -> bool {
        let Some(cold) = self.cold.remove(&rec.id) else {
            return false;
        };
        self.queue
            .remove_parts(cold.not_before_ms, cold.key(rec.id));
        cold.lay_over(&mut rec);
        self.enqueue(rec);
        true
    }

    /// Forgets a cold task whose record is gone from the store (it cannot
    /// be placed); whether it was cold.
    pub fn drop_cold(&mut self, id: &TaskId) -> bool {
        let Some(cold) = self.cold.remove(id) else {
            return false;
        };
        self.queue.remove_parts(cold.not_before_ms, cold.key(*id));
        true
    }

    /// Every live task's state and submitted priority, cold ones included
    /// (for counts).
    pub fn live_states(&self) -> impl Iterator<Item = (TaskState, Priority)> + '_ {
        let hot = self.tasks.values().map(|r| (r.state, r.spec.priority));
        hot.chain(self.cold.values().map(|c| (c.state, c.priority)))
    }

    /// Blobs the cold tasks need (retention keeps them).
    pub fn cold_blobs(&self) -> impl Iterator<Item = &Sha256> + '_ {
        self.cold.values().flat_map(|c| c.blobs.iter())
    }

    /// Job traces of cold tasks.
    pub fn cold_jobs(&self) -> impl Iterator<Item = &str> + '_ {
        self.cold.values().filter_map(|c| c.job.as_deref())
    }

    /// Ids of cold tasks in `state`.
    pub fn cold_in(&self, state: TaskState) -> impl Iterator<Item = &TaskId> + '_ {
        // Only queued and scheduled tasks are held cold.
        let any = matches!(state, TaskState::Queued | TaskState::Scheduled);
        self.cold
            .iter()
            .filter(move |(_, c)| any && c.state == state)
            .map(|(id, _)| id)
    }

    /// A cold task's delay ran out: it is ready now.
    pub(super) fn cold_due(&mut self, id: &TaskId, now: u64) -> bool {
        let Some(cold) = self.cold.get_mut(id) else {
            return false;
        };
        cold.not_before_ms = 0;
        if cold.state == TaskState::Scheduled {
            cold.state = TaskState::Queued;
            cold.updated_ms = now;
        }
        self.queue.push_parts(0, cold.key(*id));
        true
    }
}

#[cfg(test)]
mod tests;
