//! Task writes: each one sealed by its caller, and a batch of them applied
//! in one transaction ([`Store::write_batch`]); the batching writer that
//! gathers them is in `writer.rs`.

use fabric_proto::{JobRecord, QueuedRecord, TaskId, TaskOutcome, TaskRecord, TaskStatus};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use crate::tasks::{live_key, tx_err};
use crate::{Result, Store, StoreError, counts};

mod writer;

pub use writer::{Durable, FlushObserver, MAX_WRITE_BATCH, Writer};

/// One task write, encoded up front (by the caller, off the writer).
#[derive(Debug)]
pub struct TaskWrite {
    id: TaskId,
    /// Its queue sequence number, kept as the store's high mark.
    seq: u64,
    value: Vec<u8>,
    live_key: [u8; 25],
    /// The sealed [`QueuedRecord`] kept as its `live` entry's value while
    /// it is unfinished (empty once it is final).
    summary: Vec<u8>,
    terminal: bool,
    dead_letter: bool,
    /// The encoded outcome and its status, for a final result.
    result: Option<(Vec<u8>, TaskStatus)>,
}

impl TaskWrite {
    /// A task's record ([`Store::save_task`]), sealed with `store`'s key.
    /// A final record keeps no secret values (their names stay): a task
    /// that ended has no more use for them.
    pub fn record(store: &Store, rec: &TaskRecord) -> Result<Self> {
        Self::sealed(store, rec, rec.state.is_terminal())
    }

    fn sealed(store: &Store, rec: &TaskRecord, terminal: bool) -> Result<Self> {
        let value = if terminal && rec.spec.secrets.iter().any(|(_, v)| !v.expose().is_empty()) {
            // The names stay, for status; the values go.
            let mut fin = rec.clone();
            for (_, v) in &mut fin.spec.secrets {
                *v = fabric_proto::SecretValue::new("");
            }
            store.enc("task", &fin)?
        } else {
            store.enc("task", rec)?
        };
        let summary = if terminal {
            Vec::new()
        } else {
            let plain = QueuedRecord::summary_of(rec).map_err(|source| StoreError::Encode {
                what: "queued",
                source,
            })?;
            store.crypt().seal(b"queued", &plain)
        };
        Ok(Self {
            id: rec.id,
            seq: rec.seq,
            value,
            live_key: live_key(rec),
            summary,
            terminal,
            dead_letter: rec.dead_letter,
            result: None,
        })
    }

    /// A task's result with its final record ([`Store::record_result`]).
    pub fn result(store: &Store, rec: &TaskRecord, outcome: &TaskOutcome) -> Result<Self> {
        Ok(Self {
            result: Some((store.enc("result", outcome)?, outcome.status)),
            ..Self::sealed(store, rec, true)?
        })
    }
}

impl Store {
    /// Applies `writes` in order in one transaction over the task trees;
    /// for each, whether it was written. A task with a recorded result is
    /// final: a later record or result for it is not written (a result then
    /// only makes sure nothing keeps the task live).
    pub fn write_batch(&self, writes: &[TaskWrite]) -> Result<Vec<bool>> {
        self.write_job_batch(None, writes)
    }

    /// [`Store::write_batch`], with `job`'s record saved in the same
    /// transaction: a new job and its tasks are stored together or not at
    /// all.
    pub fn write_job_batch(
        &self,
        job: Option<&JobRecord>,
        writes: &[TaskWrite],
    ) -> Result<Vec<bool>> {
        let _gate = self.gate();
        self.faults.check()?;
        let job = job.map(|j| Ok::<_, StoreError>((j.id, self.enc("job", j)?)));
        let job = job.transpose()?;
        let written = (
            &self.tasks,
            &self.live,
            &self.dead,
            &self.results,
            &self.counts,
            &self.jobs,
        )
            .transaction(|(tasks, live, dead, results, counts, jobs)| {
                if let Some((id, value)) = &job {
                    jobs.insert(id.as_bytes(), value.as_slice())?;
                }
                let mut written = Vec::with_capacity(writes.len());
                let (mut added, mut dead_added, mut top) = (0, 0, 0);
                for w in writes {
                    let id = w.id.as_bytes();
                    if results.get(id)?.is_some() {
                        if w.result.is_some() {
                            live.remove(&w.live_key[..])?;
                        }
                        written.push(false);
                        continue;
                    }
                    if let Some((result, status)) = &w.result {
                        results.insert(id, result.as_slice())?;
                        counts::finished(counts, *status, 1)?;
                    }
                    if tasks.insert(id, w.value.as_slice())?.is_none() {
                        added += 1;
                    }
                    top = top.max(w.seq);
                    if w.terminal {
                        live.remove(&w.live_key[..])?;
                    } else {
                        live.insert(&w.live_key[..], w.summary.as_slice())?;
                    }
                    if w.dead_letter && dead.insert(id, &[][..])?.is_none() {
                        dead_added += 1;
                    }
                    written.push(true);
                }
                if added > 0 {
                    counts::bump_tasks(counts, added)?;
                }
                if dead_added > 0 {
                    counts::dead_letter(counts, dead_added)?;
                }
                if top > 0 {
                    counts::raise_seq_top(counts, top)?;
                }
                Ok::<_, ConflictableTransactionError<()>>(written)
            })
            .map_err(tx_err)?;
        self.tally.committed();
        Ok(written)
    }
}

#[cfg(test)]
mod tests;
