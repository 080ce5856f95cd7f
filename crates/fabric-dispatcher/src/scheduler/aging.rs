//! Aging: a task that has waited in the queue (since its submit) longer
//! than `aging_ms` climbs one priority step, and one more for each further
//! `aging_ms` (low -> normal -> high). Within a rank the queue is FIFO by
//! submission, so an aged task goes ahead of younger work of the rank it
//! climbed to: no stream of higher-priority tasks keeps it queued forever.

use super::Scheduler;

/// Most queued tasks one tick looks at per rank. Aging runs under the
/// core lock on every tick: a million tasks that crossed `aging_ms` at
/// once (a restart of an old backlog) held it 1.6 s in one tick. Bounded,
/// they climb over the next ticks instead, oldest first.
pub(super) const AGE_WALK_PER_TICK: usize = 10_000;

impl Scheduler {
    /// Moves up the ready tasks whose wait earned them a step by `now`,
    /// looking at the oldest [`AGE_WALK_PER_TICK`] of each rank at most.
    pub(super) fn age(&mut self, now: u64) {
        let age = self.cfg.aging_ms;
        if age == 0 {
            return;
        }
        // The lower ranks first, so that a task climbs one step per call.
        for rank in [1u8, 2] {
            let mut climb = Vec::new();
            for key in self.queue.ready_of_rank(rank).take(AGE_WALK_PER_TICK) {
                let (submitted, delayed_to, aged) = match self.tasks.get(&key.2) {
                    Some(rec) => (rec.submitted_ms, rec.spec.not_before_ms, rec.aged),
                    None => match self.cold.get(&key.2) {
                        Some(c) => (c.submitted_ms, Some(c.spec_not_before_ms), c.aged),
                        None => continue,
                    },
                };
                // Oldest first: once one was submitted less than a step
                // ago, none after it was earlier.
                if now.saturating_sub(submitted) < age {
                    break;
                }
                // A delayed task waits from its time, not from its submit.
                let since = submitted.max(delayed_to.unwrap_or(0));
                if now.saturating_sub(since) / age > u64::from(aged) {
                    climb.push(key.2);
                }
            }
            for id in climb {
                if let Some(rec) = self.tasks.get_mut(&id) {
                    self.queue.remove(rec);
                    rec.aged += 1;
                    self.queue.push(rec);
                } else if let Some(c) = self.cold.get_mut(&id) {
                    self.queue.remove_parts(c.not_before_ms, c.key(id));
                    c.aged += 1;
                    self.queue.push_parts(c.not_before_ms, c.key(id));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
