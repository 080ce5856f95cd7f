//! Which held task waits on which (`--after`): a pure index. A parent that
//! succeeds releases the children it was the last one for; a parent that
//! ends any other way has its children skipped (and theirs, in turn, by
//! the caller). Bounded by the held tasks, which count against the queue.

use std::collections::{HashMap, HashSet};

use fabric_proto::TaskId;

/// The waiting edges.
#[derive(Debug, Default)]
pub(crate) struct Deps {
    /// Parent → held children that wait on it.
    children: HashMap<TaskId, Vec<TaskId>>,
    /// Held child → parents it still waits on.
    pending: HashMap<TaskId, HashSet<TaskId>>,
}

/// What a parent's end does to its children.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Ended {
    /// Children whose every parent has now succeeded: to queue.
    pub release: Vec<TaskId>,
    /// Children to end as skipped, because of this parent.
    pub skip: Vec<TaskId>,
}

impl Deps {
    /// `child` waits on `parents` (each still unfinished).
    pub(crate) fn wait(&mut self, child: TaskId, parents: &[TaskId]) {
        for p in parents {
            self.children.entry(*p).or_default().push(child);
        }
        self.pending
            .entry(child)
            .or_default()
            .extend(parents.iter().copied());
    }

    /// How many tasks are held.
    pub(crate) fn held(&self) -> usize {
        self.pending.len()
    }

    /// `parent` ended, `succeeded` or not.
    pub(crate) fn ended(&mut self, parent: &TaskId, succeeded: bool) -> Ended {
        let mut out = Ended::default();
        for child in self.children.remove(parent).unwrap_or_default() {
            // A child skipped or cancelled earlier is no longer pending.
            let Some(waits) = self.pending.get_mut(&child) else {
                continue;
            };
            if !succeeded {
                self.pending.remove(&child);
                out.skip.push(child);
                continue;
            }
            waits.remove(parent);
            if waits.is_empty() {
                self.pending.remove(&child);
                out.release.push(child);
            }
        }
        out
    }

    /// A held task left another way (cancelled): it waits no more.
    pub(crate) fn forget(&mut self, child: &TaskId) {
        self.pending.remove(child);
    }
}

/// After a restart: the held tasks' parents looked at again. Those whose
/// parents all succeeded meanwhile are queued, those with one that did not
/// are skipped (written here; flushed by the caller), and the rest wait.
pub(crate) async fn restore(
    sched: &mut crate::scheduler::Scheduler,
    store: &fabric_store::Store,
    ledger: &super::ledger::Ledger,
    now: u64,
) -> Result<Deps, fabric_store::StoreError> {
    // Until nothing changes: a task skipped here skips those held after
    // it, whichever order they come in.
    loop {
        let (deps, changed) = restore_once(sched, store, ledger, now)?;
        if !changed {
            return Ok(deps);
        }
        // What this pass wrote is read by the next (in a group, once
        // applied).
        ledger.durable().await?;
    }
}

fn restore_once(
    sched: &mut crate::scheduler::Scheduler,
    store: &fabric_store::Store,
    ledger: &super::ledger::Ledger,
    now: u64,
) -> Result<(Deps, bool), fabric_store::StoreError> {
    let mut deps = Deps::default();
    let mut changed = false;
    let held: Vec<_> = sched
        .live_records()
        .filter(|r| r.state == fabric_proto::TaskState::Waiting)
        .map(|r| (r.id, r.spec.after.clone()))
        .collect();
    for (id, parents) in held {
        let super::requests::after::Parents { unfinished, failed } =
            super::requests::after::classify(sched, store, &parents)?;
        if let Some((parent, status)) = failed {
            if let Some(rec) = sched.skip(&id, now) {
                let outcome = super::requests::after::skipped(parent, status);
                ledger.record_result(&rec, &outcome)?;
                changed = true;
            }
        } else if unfinished.is_empty() {
            let mut failed = None;
            if let Some(rec) = sched.release_waiting_with(&id, now, |rec| {
                failed = super::requests::after::fill_input(store, rec).err();
            }) {
                ledger.save_task(&rec)?;
            }
            if let Some(e) = failed {
                return Err(e);
            }
        } else {
            deps.wait(id, &unfinished);
        }
    }
    Ok((deps, changed))
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_released_by_its_last_parent_and_skipped_by_any_failure() {
        let (a, b, c, d) = (TaskId::new(), TaskId::new(), TaskId::new(), TaskId::new());
        let mut deps = Deps::default();
        deps.wait(c, &[a, b]);
        deps.wait(d, &[a]);
        assert_eq!(deps.held(), 2);
        let first = deps.ended(&a, true);
        assert_eq!(first.release, vec![d], "d waited on a alone");
        assert!(first.skip.is_empty());
        let second = deps.ended(&b, false);
        assert_eq!(second.skip, vec![c]);
        assert!(second.release.is_empty());
        assert_eq!(deps.held(), 0);
        // A cancelled child is not released later.
        let (p, q) = (TaskId::new(), TaskId::new());
        deps.wait(q, &[p]);
        deps.forget(&q);
        assert_eq!(deps.ended(&p, true), Ended::default());
    }
}
