//! Counters kept in the `counts` tree, written in the same transactions as
//! the task trees they count, so "how many" is a few reads, never a scan
//! (sled's `len` walks a whole tree): all tasks, dead letters, and finished
//! tasks per status.

use fabric_proto::{TaskOutcome, TaskStatus};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use crate::{Result, Store};

const TASKS: &[u8] = b"tasks";
const DEAD: &[u8] = b"dead";
/// The highest sequence number of a stored task: a restart numbers above
/// it (`seq.rs`).
pub(crate) const SEQ_TOP: &[u8] = b"seq_top";
/// Set once the counters cover every stored task (a store written before
/// they existed is counted once, on open).
const COUNTED: &[u8] = b"counted";

fn status_key(s: TaskStatus) -> Vec<u8> {
    format!("status/{}", s.as_str()).into_bytes()
}

/// How many tasks the store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTotals {
    /// Every stored task, finished or not.
    pub tasks: u64,
    /// Tasks in the dead-letter set.
    pub dead_letters: u64,
    /// Finished tasks per final status, in [`TaskStatus::ALL`] order.
    pub finished: Vec<(TaskStatus, u64)>,
}

impl TaskTotals {
    /// Finished tasks with status `s`.
    pub fn finished(&self, s: TaskStatus) -> u64 {
        self.finished
            .iter()
            .find(|(k, _)| *k == s)
            .map_or(0, |(_, n)| *n)
    }

    /// Finished tasks of any status.
    pub fn finished_total(&self) -> u64 {
        self.finished.iter().map(|(_, n)| n).sum()
    }
}

fn read(v: Option<sled::IVec>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// Adds `delta` to a counter inside a transaction.
fn bump(
    counts: &TransactionalTree,
    key: &[u8],
    delta: i64,
) -> Result<(), ConflictableTransactionError<()>> {
    let now = read(counts.get(key)?).saturating_add_signed(delta);
    counts.insert(key, &now.to_be_bytes())?;
    Ok(())
}

/// Counts new (positive) or removed (negative) tasks.
pub(crate) fn bump_tasks(
    counts: &TransactionalTree,
    delta: i64,
) -> Result<(), ConflictableTransactionError<()>> {
    bump(counts, TASKS, delta)
}

/// Counts a task entering (1) or leaving (-1) the dead-letter set.
pub(crate) fn dead_letter(
    counts: &TransactionalTree,
    delta: i64,
) -> Result<(), ConflictableTransactionError<()>> {
    bump(counts, DEAD, delta)
}

/// Raises the highest stored sequence number to `top`, inside the
/// transaction that stores the task numbered `top`.
pub(crate) fn raise_seq_top(
    counts: &TransactionalTree,
    top: u64,
) -> Result<(), ConflictableTransactionError<()>> {
    if top > read(counts.get(SEQ_TOP)?) {
        counts.insert(SEQ_TOP, &top.to_be_bytes())?;
    }
    Ok(())
}

/// The highest sequence number of a stored task (0: none yet).
pub(crate) fn seq_top(counts: &sled::Tree) -> Result<u64> {
    Ok(read(counts.get(SEQ_TOP)?))
}

/// Counts a recorded (1) or removed (-1) result.
pub(crate) fn finished(
    counts: &TransactionalTree,
    status: TaskStatus,
    delta: i64,
) -> Result<(), ConflictableTransactionError<()>> {
    bump(counts, &status_key(status), delta)
}

impl Store {
    /// How many tasks the store holds, from its counters.
    pub fn totals(&self) -> Result<TaskTotals> {
        let get = |k: &[u8]| -> Result<u64> { Ok(read(self.counts.get(k)?)) };
        Ok(TaskTotals {
            tasks: get(TASKS)?,
            dead_letters: get(DEAD)?,
            finished: TaskStatus::ALL
                .iter()
                .map(|s| Ok((*s, get(&status_key(*s))?)))
                .collect::<Result<_>>()?,
        })
    }

    /// Counts a store written before the counters existed, once.
    pub(crate) fn count_once(&self) -> Result<()> {
        if self.counts.get(COUNTED)?.is_some() {
            return Ok(());
        }
        let mut by_status = std::collections::BTreeMap::<&'static str, u64>::new();
        for v in self.results.iter().values() {
            let outcome: TaskOutcome = self.dec("result", &v?)?;
            *by_status.entry(outcome.status.as_str()).or_default() += 1;
        }
        let put = |k: &[u8], n: u64| self.counts.insert(k, &n.to_be_bytes()).map(drop);
        put(TASKS, self.tasks.len() as u64)?;
        put(DEAD, self.dead.len() as u64)?;
        for s in TaskStatus::ALL {
            put(
                &status_key(s),
                by_status.get(s.as_str()).copied().unwrap_or(0),
            )?;
        }
        put(COUNTED, 1)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
