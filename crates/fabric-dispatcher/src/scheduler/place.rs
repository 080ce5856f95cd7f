//! Placement: ready tasks onto workers with room, highest priority first
//! and FIFO within a priority; cold tasks (`cold.rs`) are read back
//! before they are leased.

use fabric_proto::{TaskRecord, TaskState};

use super::Scheduler;
use super::queue::QueueKey;
use super::worker::{Need, Worker};

impl Scheduler {
    /// Places ready tasks on workers with room, highest priority first and
    /// FIFO within a priority. Returns the leased records (state
    /// `Running`, attempt incremented, worker set).
    pub fn place(&mut self, now: u64) -> Vec<TaskRecord> {
        self.resume = None;
        self.place_from(now, None)
    }

    /// Goes on placing from the cold task where [`Scheduler::place`]
    /// stopped, once the service read it back (`cold.rs`): the tasks
    /// before it were tried in that pass, and nothing since made room.
    pub fn place_on(&mut self, now: u64) -> Vec<TaskRecord> {
        match self.resume.take() {
            Some(start) => self.place_from(now, Some(start)),
            None => Vec::new(),
        }
    }

    /// Placement from the head of the ready queue, or from `start`.
    fn place_from(&mut self, now: u64, mut start: Option<QueueKey>) -> Vec<TaskRecord> {
        let mut leased = Vec::new();
        if self.holding(now) {
            return leased;
        }
        let mut cursor = None;
        loop {
            if !self.workers.values().any(Worker::open) {
                break;
            }
            // Walk the queue in order without copying it; tasks that fit no
            // worker stay where they are and do not block those behind.
            let next = match start.take() {
                Some(first) => self.queue.first_from(first),
                None => self.queue.next_after(cursor),
            };
            let Some(key) = next else {
                break;
            };
            cursor = Some(key);
            let (need, cold) = match (self.tasks.get(&key.2), self.cold.get(&key.2)) {
                (Some(rec), _) => (Need::of(rec), false),
                (None, Some(c)) => (c.need(), true),
                (None, None) => {
                    // A key without its task would be walked past forever.
                    tracing::error!(task = %key.2, "a queued key without its task; dropping the key");
                    self.queue.take(&key);
                    continue;
                }
            };
            // A task no registered worker could ever take leaves the ready
            // set until a worker registers, so it costs placement nothing.
            if !self.workers.values().any(|w| w.could_run(&need)) {
                self.queue.park(&key);
                continue;
            }
            let best = self
                .workers
                .iter()
                .filter(|(_, w)| w.fits(&need))
                .max_by_key(|(k, w)| (w.free_slots(), std::cmp::Reverse(**k)))
                .map(|(k, _)| *k);
            let Some(wk) = best else {
                continue;
            };
            if cold {
                // Held cold (a restart, a deep queue): its record is read back first
                // (`wanted`), then placement goes on from here.
                self.want_from(key);
                self.resume = Some(key);
                break;
            }
            self.queue.take(&key);
            let rec = self.tasks.get_mut(&key.2).expect("queued task is live");
            rec.state = TaskState::Running;
            rec.attempt += 1;
            rec.worker = Some(wk);
            rec.updated_ms = now;
            let w = self.workers.get_mut(&wk).expect("chosen worker exists");
            rec.attempt_started(wk, Some(w.name.clone()), now);
            let deadline = now + rec.spec.limits.timeout_ms + self.cfg.lease_grace_ms;
            w.leases.insert(rec.id);
            w.used_memory += rec.spec.limits.memory_bytes;
            self.deadlines.insert((deadline, rec.id));
            self.lease_deadline.insert(rec.id, deadline);
            leased.push(rec.clone());
        }
        leased
    }
}
