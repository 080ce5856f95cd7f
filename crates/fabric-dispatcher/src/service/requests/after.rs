//! `--after`: a task admitted to run after others. Its parents are looked
//! at under the scheduler's lock, where a parent's end is also noted
//! (`Shared::announce`), so no end is missed between the two: a parent
//! still live (or written but not yet finished) is waited on, one that
//! succeeded is passed, and one that ended any other way skips the task.

use fabric_proto::wire::{ErrorBody, ErrorCode};
use fabric_proto::{MAX_PARENTS, TaskId, TaskOutcome, TaskSpec, TaskStatus};

use super::RequestError;
use crate::service::state::Shared;

/// Where a task's parents stand.
#[derive(Debug, Default)]
pub(crate) struct Parents {
    /// Not finished yet: the task waits on these.
    pub unfinished: Vec<TaskId>,
    /// One that ended without succeeding: the task is skipped.
    pub failed: Option<(TaskId, TaskStatus)>,
}

/// Checks `spec.after` (how many, and that each task exists, or is one
/// of `batch`: a job's tasks run after each other) before anything is
/// stored. A job's task may run after up to a job's worth of tasks.
pub(crate) fn check(
    shared: &Shared,
    spec: &mut TaskSpec,
    batch: Option<&std::collections::HashSet<TaskId>>,
) -> Result<(), RequestError> {
    if let Some(p) = spec.input_from {
        if !spec.input.is_empty() || spec.input_blob.is_some() {
            return Err(RequestError::Refused(ErrorBody::new(
                ErrorCode::BadRequest,
                "give an input or input_from, not both",
            )));
        }
        // Its stdin comes from a task it therefore runs after.
        spec.after.push(p);
    }
    if batch.is_none() && !spec.fan_in.is_empty() {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::BadRequest,
            "fan_in is a job's (a step's input_from); a task reads one parent's stdout with input_from",
        )));
    }
    if !spec.files_from.is_empty() {
        if !matches!(spec.kind, fabric_proto::TaskKind::Command { .. }) {
            return Err(RequestError::Refused(ErrorBody::new(
                ErrorCode::BadRequest,
                "files_from: only a native command has a dir to stage files into",
            )));
        }
        spec.after.extend(spec.files_from.iter().copied());
    }
    spec.after.extend(spec.fan_in.iter().copied());
    spec.after.sort();
    spec.after.dedup();
    let max_parents = if batch.is_some() {
        fabric_proto::MAX_JOB_TASKS
    } else {
        MAX_PARENTS
    };
    if spec.after.len() > max_parents {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::BadRequest,
            format!(
                "after: {} tasks; a task runs after at most {max_parents}",
                spec.after.len()
            ),
        )));
    }
    for p in &spec.after {
        if batch.is_some_and(|b| b.contains(p)) {
            continue;
        }
        let live = shared.core().sched.is_live(p);
        if !live && shared.store.task(p)?.is_none() {
            return Err(RequestError::NotFound(format!(
                "after: no task {p} (a task runs after tasks that exist)"
            )));
        }
    }
    Ok(())
}

/// Where `parents` stand now; call with the scheduler's lock held.
pub(crate) fn classify(
    sched: &crate::scheduler::Scheduler,
    store: &fabric_store::Store,
    parents: &[TaskId],
) -> Result<Parents, fabric_store::StoreError> {
    let mut out = Parents::default();
    for p in parents {
        if sched.is_live(p) {
            out.unfinished.push(*p);
            continue;
        }
        match store.result(p)? {
            Some(o) if o.status == TaskStatus::Succeeded => {}
            Some(o) => {
                out.failed.get_or_insert((*p, o.status));
            }
            // Stored but neither live nor finished: it is finishing now,
            // and its end will be noted after this lock is let go.
            None if store.task(p)?.is_some_and(|r| !r.state.is_terminal()) => {
                out.unfinished.push(*p);
            }
            // Gone (removed by retention): nothing to run after.
            None => {
                out.failed.get_or_insert((*p, TaskStatus::Cancelled));
            }
        }
    }
    Ok(out)
}

/// The most bytes of parents' stdouts a task reads as its input
/// (`input_from`, a job's fan-in): the default most input a task takes.
pub(crate) const MAX_FAN_IN_BYTES: usize = fabric_proto::DEFAULT_MAX_INPUT_BYTES as usize;

/// The result of a task skipped because `parent` ended `status`.
pub(crate) fn skipped(parent: TaskId, status: TaskStatus) -> TaskOutcome {
    TaskOutcome::ended(
        TaskStatus::Skipped,
        format!("skipped: it runs after task {parent}, which ended {status}"),
    )
}

/// A held task on its way to the queue: with `input_from` (and a job's
/// fan-in, `fan_in`), its parents' recorded stdouts, concatenated in that
/// order, become its input (inline, or a stored blob when big; cut at
/// [`MAX_FAN_IN_BYTES`], with a warning in the log); with `files_from`,
/// its parents' output files are staged into its dir.
pub(crate) fn fill_input(
    store: &fabric_store::Store,
    rec: &mut fabric_proto::TaskRecord,
) -> Result<(), fabric_store::StoreError> {
    let from: Vec<TaskId> = rec
        .spec
        .input_from
        .iter()
        .chain(&rec.spec.fan_in)
        .copied()
        .collect();
    if !from.is_empty() {
        let mut stdin = Vec::new();
        for p in from {
            let room = MAX_FAN_IN_BYTES.saturating_sub(stdin.len());
            if room == 0 {
                tracing::warn!(task_id = %rec.id, "its parents' stdouts pass {MAX_FAN_IN_BYTES} bytes: the rest are not read");
                break;
            }
            let stdout = store.result(&p)?.map(|o| o.stdout).unwrap_or_default();
            if stdout.len() > room {
                tracing::warn!(task_id = %rec.id, "its parents' stdouts pass {MAX_FAN_IN_BYTES} bytes: its input is cut there");
            }
            stdin.extend_from_slice(&stdout[..stdout.len().min(room)]);
        }
        if stdin.len() > fabric_proto::INLINE_INPUT_MAX {
            rec.spec.input_blob = Some(store.put_chunked(&stdin)?);
            rec.spec.input = Vec::new();
        } else {
            rec.spec.input = stdin;
            rec.spec.input_blob = None;
        }
    }
    // Output files of the parents named: staged by content, as `--file`
    // would stage them (a path given twice keeps the later parent's).
    let mut staged = Vec::new();
    for p in rec.spec.files_from.clone() {
        for f in store.result(&p)?.map(|o| o.files).unwrap_or_default() {
            staged.push(fabric_proto::StagedFile {
                path: f.path,
                blob: store.put_chunked(&f.bytes)?,
                executable: f.executable,
            });
        }
    }
    if let fabric_proto::TaskKind::Command { files, .. } = &mut rec.spec.kind {
        for s in staged {
            files.retain(|f| f.path != s.path);
            files.push(s);
        }
    }
    Ok(())
}

/// Stores again, on a member that takes over its group's queue, the blobs
/// [`fill_input`] made on the former leader (a parent's stdout over the
/// inline size, its output files): blob files do not travel in the log,
/// but the parents' results do, and the blobs are content-addressed, so
/// filling the task's input again here makes the same ones. How many
/// tasks needed it.
pub(crate) fn refill_missing(
    store: &fabric_store::Store,
) -> Result<usize, fabric_store::StoreError> {
    let mut refilled = 0;
    for rec in store.live_tasks()? {
        let derived = rec.spec.input_from.is_some()
            || !rec.spec.fan_in.is_empty()
            || !rec.spec.files_from.is_empty();
        if !derived || rec.state == fabric_proto::TaskState::Waiting {
            continue;
        }
        let mut missing = false;
        if let Some(b) = &rec.spec.input_blob {
            missing |= !store.has_blob(&b.sha)?;
        }
        if let fabric_proto::TaskKind::Command { files, .. } = &rec.spec.kind {
            for f in files {
                missing |= !store.has_blob(&f.blob.sha)?;
            }
        }
        if missing {
            let mut again = rec.clone();
            match fill_input(store, &mut again) {
                Ok(()) => refilled += 1,
                Err(e) => {
                    tracing::warn!(task = %rec.id, error = %e, "cannot store again the input made from its parents' outputs")
                }
            }
        }
    }
    Ok(refilled)
}

#[cfg(test)]
mod refill_tests {
    use fabric_proto::{Sha256, TaskId, TaskKind, TaskOutcome, TaskRecord, TaskSpec, TaskStatus};
    use fabric_store::Store;

    /// A leader filled a child's input from its parent's 10 KiB stdout (a
    /// blob file on the leader only); another member, holding the same
    /// records and results, stores that blob again when it takes over.
    #[test]
    fn a_new_leader_stores_again_the_inputs_made_from_parents() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let [leader, member] = dirs.each_ref().map(|d| Store::open(d.path()).unwrap());
        let kind = TaskKind::Wasm {
            module: Sha256::of(b"m"),
        };
        let mut parent = TaskRecord::queued(
            TaskId::from_bytes([1; 16]),
            TaskSpec::new(kind.clone()),
            1,
            0,
        );
        parent.state = fabric_proto::TaskState::Done;
        parent.status = Some(TaskStatus::Succeeded);
        let outcome = TaskOutcome {
            stdout: vec![b'x'; 10 << 10],
            ..TaskOutcome::ended(TaskStatus::Succeeded, "")
        };
        let mut child = TaskRecord::queued(
            TaskId::from_bytes([2; 16]),
            TaskSpec {
                input_from: Some(parent.id),
                ..TaskSpec::new(kind)
            },
            2,
            0,
        );
        for s in [&leader, &member] {
            s.record_result(&parent, &outcome).unwrap();
        }
        super::fill_input(&leader, &mut child).unwrap();
        let blob = child.spec.input_blob.expect("over the inline size: a blob");
        for s in [&leader, &member] {
            s.save_task(&child).unwrap();
        }
        assert!(!member.has_blob(&blob.sha).unwrap());
        assert_eq!(
            super::refill_missing(&leader).unwrap(),
            0,
            "nothing missing"
        );
        assert_eq!(super::refill_missing(&member).unwrap(), 1);
        assert!(member.has_blob(&blob.sha).unwrap());
        assert_eq!(member.blob_len(&blob.sha).unwrap(), Some(10 << 10));
    }
}
