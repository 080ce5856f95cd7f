//! Tasks: records, the `live` queue index, results and dead letters.
//!
//! Every write here is one sled transaction over `tasks`, `live`, `results`
//! and `dead`, so a task never sits half moved between them.

use fabric_proto::{CodecError, JobRecord, TaskId, TaskOutcome, TaskRecord, TaskState};

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::writes::TaskWrite;
use crate::{Result, Store, StoreError, counts};

/// The `live` index key of a task: sorts by priority (its
/// [`rank`](fabric_proto::Priority::rank), the scheduler's order), then
/// submission.
pub fn live_key(rec: &TaskRecord) -> [u8; 25] {
    let mut k = [0u8; 25];
    k[0] = rec.spec.priority.rank();
    k[1..9].copy_from_slice(&rec.seq.to_be_bytes());
    k[9..].copy_from_slice(rec.id.as_bytes());
    k
}

/// The most records one [`Store::list_finished`] call reads.
pub const MAX_LIST_SCAN: usize = 100_000;

/// Sizes of the main trees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounts {
    /// All tasks ever recorded.
    pub tasks: u64,
    /// Unfinished tasks.
    pub live: u64,
    /// Recorded results.
    pub results: u64,
    /// Dead letters.
    pub dead_letters: u64,
}

impl Store {
    /// Writes a task record; keeps the `live` index in step with its state.
    /// Once a task has a recorded result its record is final: a late write
    /// (a lease or retry decided before the result) is ignored, and the
    /// return value says whether the write happened.
    pub fn save_task(&self, rec: &TaskRecord) -> Result<bool> {
        Ok(self.save_tasks([rec])? == 1)
    }

    /// [`Store::save_task`] for many records in one transaction (a batch of
    /// leases costs one commit, not one each); how many were written.
    pub fn save_tasks<'a>(&self, recs: impl IntoIterator<Item = &'a TaskRecord>) -> Result<usize> {
        self.save_job_tasks(None, recs)
    }

    /// [`Store::save_tasks`], with the job they belong to saved in the
    /// same transaction ([`Store::write_job_batch`]).
    pub fn save_job_tasks<'a>(
        &self,
        job: Option<&JobRecord>,
        recs: impl IntoIterator<Item = &'a TaskRecord>,
    ) -> Result<usize> {
        let writes = recs
            .into_iter()
            .map(|r| TaskWrite::record(self, r))
            .collect::<Result<Vec<_>>>()?;
        Ok(self
            .write_job_batch(job, &writes)?
            .into_iter()
            .filter(|w| *w)
            .count())
    }

    /// Records a task's result together with its final record, unless a
    /// result is already recorded. Returns whether this call recorded it.
    pub fn record_result(&self, rec: &TaskRecord, outcome: &TaskOutcome) -> Result<bool> {
        let written = self.write_batch(&[TaskWrite::result(self, rec, outcome)?])?;
        Ok(written.first().copied().unwrap_or(false))
    }

    /// Takes a finished task out of the dead-letter set (it was retried as
    /// a new task); returns whether it was there.
    pub fn clear_dead_letter(&self, id: &TaskId) -> Result<bool> {
        let _gate = self.gate();
        self.faults.check()?;
        let Some(mut rec) = self.task(id)? else {
            return Ok(false);
        };
        rec.dead_letter = false;
        let value = self.enc("task", &rec)?;
        (&self.tasks, &self.dead, &self.counts)
            .transaction(|(tasks, dead, counts)| {
                if dead.remove(id.as_bytes())?.is_none() {
                    return Ok(false);
                }
                tasks.insert(id.as_bytes(), value.as_slice())?;
                counts::dead_letter(counts, -1)?;
                Ok::<_, ConflictableTransactionError<()>>(true)
            })
            .map_err(tx_err)
    }

    /// Up to `limit` ids of stored tasks whose id, as hex, starts with
    /// `hex` (lowercase hex digits only), in id order.
    pub fn ids_with_prefix(&self, hex: &str, limit: usize) -> Result<Vec<TaskId>> {
        let nibbles: Vec<u8> = hex
            .bytes()
            .filter_map(|c| char::from(c).to_digit(16).map(|d| d as u8))
            .take(32)
            .collect();
        let mut lo = [0u8; 16];
        let mut hi = [0xffu8; 16];
        for (i, n) in nibbles.iter().enumerate() {
            let (byte, high) = (i / 2, i % 2 == 0);
            if high {
                lo[byte] = n << 4;
                hi[byte] = (n << 4) | 0x0f;
            } else {
                lo[byte] |= n;
                hi[byte] = (hi[byte] & 0xf0) | n;
            }
        }
        let mut ids = Vec::new();
        for k in self.tasks.range(lo..=hi).keys().take(limit) {
            let k = k?;
            if let Ok(b) = <[u8; 16]>::try_from(k.as_ref()) {
                ids.push(TaskId::from_bytes(b));
            }
        }
        Ok(ids)
    }

    /// One task's record.
    pub fn task(&self, id: &TaskId) -> Result<Option<TaskRecord>> {
        self.tasks
            .get(id.as_bytes())?
            .map(|v| self.dec("task", &v))
            .transpose()
    }

    /// One task's recorded result.
    pub fn result(&self, id: &TaskId) -> Result<Option<TaskOutcome>> {
        self.results
            .get(id.as_bytes())?
            .map(|v| self.dec("result", &v))
            .transpose()
    }

    /// Adds what the worker's own report of a cancelled run says (its
    /// output, run time, fuel and memory) to the recorded cancel, whose
    /// status and message stay. Only a recorded `cancelled` result is
    /// amended; whether it was. Not a new result: no counter moves.
    pub fn amend_cancelled(&self, id: &TaskId, run: &TaskOutcome) -> Result<bool> {
        let _gate = self.gate();
        let Some(mut recorded) = self.result(id)? else {
            return Ok(false);
        };
        if recorded.status != fabric_proto::TaskStatus::Cancelled {
            return Ok(false);
        }
        recorded.stdout.clone_from(&run.stdout);
        recorded.stderr.clone_from(&run.stderr);
        recorded.stdout_truncated = run.stdout_truncated;
        recorded.stderr_truncated = run.stderr_truncated;
        recorded.duration_ms = recorded.duration_ms.max(run.duration_ms);
        recorded.fuel_used = run.fuel_used;
        recorded.peak_memory_bytes = run.peak_memory_bytes;
        self.results
            .insert(id.as_bytes(), self.enc("result", &recorded)?)?;
        Ok(true)
    }

    /// Every unfinished task, in queue order (priority, then submission).
    /// This is what a dispatcher reloads on start.
    pub fn live_tasks(&self) -> Result<Vec<TaskRecord>> {
        let mut out = Vec::new();
        self.each_live(|rec: &TaskRecord| rec.state, |rec| out.push(rec))?;
        Ok(out)
    }

    /// Tasks, newest first, optionally in one state, older than `before`.
    pub fn list(
        &self,
        state: Option<TaskState>,
        limit: usize,
        before: Option<&TaskId>,
    ) -> Result<Vec<TaskRecord>> {
        self.scan(limit, before, usize::MAX, |rec| {
            state.is_none_or(|s| s == rec.state)
        })
    }

    /// Up to `limit` records that `keep` accepts, newest first, older than
    /// `before` when given, reading at most `max_read` records.
    fn scan(
        &self,
        limit: usize,
        before: Option<&TaskId>,
        max_read: usize,
        keep: impl Fn(&TaskRecord) -> bool,
    ) -> Result<Vec<TaskRecord>> {
        let iter = match before {
            Some(b) => self.tasks.range(..b.as_bytes().to_vec()),
            None => self.tasks.range::<Vec<u8>, _>(..),
        };
        let mut out = Vec::new();
        for entry in iter.rev().take(max_read) {
            if out.len() >= limit {
                break;
            }
            let (_, v) = entry?;
            let rec: TaskRecord = self.dec("task", &v)?;
            if keep(&rec) {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Up to `limit` finished tasks (optionally only those in `state`),
    /// newest first, older than `before` when given. Unfinished records
    /// are skipped without counting towards `limit` (the scheduler lists
    /// those), and one call reads at most [`MAX_LIST_SCAN`] records, so a
    /// filter nothing matches costs a bounded scan, not the whole history.
    pub fn list_finished(
        &self,
        state: Option<TaskState>,
        limit: usize,
        before: Option<&TaskId>,
    ) -> Result<Vec<TaskRecord>> {
        self.scan(limit, before, MAX_LIST_SCAN, |rec| {
            rec.state.is_terminal() && state.is_none_or(|s| s == rec.state)
        })
    }

    /// Up to `limit` tasks (any state) whose correlation id is `trace`,
    /// newest first, older than `before` when given; at most
    /// [`MAX_LIST_SCAN`] records read.
    pub fn list_traced(
        &self,
        trace: &str,
        limit: usize,
        before: Option<&TaskId>,
    ) -> Result<Vec<TaskRecord>> {
        self.scan(limit, before, MAX_LIST_SCAN, |rec| {
            rec.spec.trace.as_deref() == Some(trace)
        })
    }

    /// Counts tasks per state (scans the live index and the totals).
    pub fn counts(&self) -> Result<StoreCounts> {
        Ok(StoreCounts {
            tasks: self.tasks.len() as u64,
            live: self.live.len() as u64,
            results: self.results.len() as u64,
            dead_letters: self.dead.len() as u64,
        })
    }

    /// Whether a task is in the dead-letter set.
    pub fn is_dead_letter(&self, id: &TaskId) -> Result<bool> {
        Ok(self.dead.contains_key(id.as_bytes())?)
    }

    /// Every task in the dead-letter set.
    pub fn dead_letters(&self) -> Result<Vec<TaskId>> {
        self.dead
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                Ok(TaskId::from_bytes(k.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt {
                        what: "dead-letter key",
                        source: CodecError::Decode(format!("key of {} bytes", k.len())),
                    }
                })?))
            })
            .collect()
    }
}

pub(crate) fn tx_err(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Sled(e),
        TransactionError::Abort(()) => unreachable!("store transactions never abort"),
    }
}

#[cfg(test)]
mod tests;
