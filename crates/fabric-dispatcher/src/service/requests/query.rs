//! Read-only requests: one task, a page of tasks, the workers.

use fabric_proto::wire::{ClusterCaps, ErrorBody, ErrorCode, Response, TaskCounts, WorkerSummary};
use fabric_proto::{TaskId, TaskRecord, TaskState};

use super::{Answer, RequestError};
use crate::service::state::Shared;

/// What the cluster admits.
pub fn caps(shared: &Shared) -> Response {
    let c = &shared.cfg.caps;
    Response::Caps(ClusterCaps {
        limits: c.limits,
        max_input_bytes: c.max_input_bytes as u64,
        max_module_bytes: c.max_module_bytes as u64,
        max_args_bytes: c.max_args_bytes as u64,
        max_retries: c.max_retries,
    })
}

/// How many tasks there are: unfinished ones from the scheduler, the
/// history's totals from the store's counters.
pub fn counts(shared: &Shared) -> Answer {
    let (live, running) = {
        let core = shared.core();
        let running = core
            .sched
            .live_records()
            .filter(|r| r.state == TaskState::Running)
            .count();
        (core.sched.live() as u64, running as u64)
    };
    let totals = shared.store.totals()?;
    Ok(Response::Counts(TaskCounts {
        total: totals.tasks,
        queued: live.saturating_sub(running),
        running,
        finished: totals.finished,
        dead_letters: totals.dead_letters,
    }))
}

/// The most tasks one page may ask for.
const MAX_PAGE: usize = 10_000;

/// One task (`Status`), or with its recorded outcome (`Result`).
pub fn task(shared: &Shared, id: &TaskId, with_outcome: bool) -> Answer {
    match shared.task_info(id, with_outcome)? {
        Some(info) => Ok(Response::Task(Box::new(info))),
        None => Err(RequestError::no_task(id)),
    }
}

/// The one task whose id starts with `prefix`.
pub fn resolve(shared: &Shared, prefix: &str) -> Answer {
    let hex: String = prefix.chars().filter(|c| *c != '-').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) || hex.len() > 32 {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{prefix:?} is not a task id or the start of one (hex digits and dashes)"),
        )));
    }
    let ids = shared.store.ids_with_prefix(&hex.to_ascii_lowercase(), 4)?;
    match ids.as_slice() {
        [] => Err(RequestError::NotFound(format!(
            "no task id starts with {prefix}"
        ))),
        [one] => task(shared, one, false),
        several => {
            let shown: Vec<String> = several.iter().take(3).map(ToString::to_string).collect();
            let more = if several.len() > 3 { ", ..." } else { "" };
            // The request's fault, like any other bad id (exit 2, HTTP 400).
            Err(RequestError::Refused(ErrorBody::new(
                ErrorCode::BadRequest,
                format!(
                    "{prefix} is the start of several task ids ({}{more}): give more of it",
                    shown.join(", ")
                ),
            )))
        }
    }
}

/// Tasks newest first. Every task is stored from its admission on, so
/// the store's rows in id order are the page; an unfinished one is shown
/// as the scheduler has it (the store does not track leases). Filtered by
/// an unfinished state, the page comes from the scheduler alone; by a
/// finished one, from the store alone (a finished record is final).
pub fn list(
    shared: &Shared,
    state: Option<TaskState>,
    trace: Option<&str>,
    limit: u32,
    before: Option<&TaskId>,
) -> Answer {
    let limit = (limit as usize).clamp(1, MAX_PAGE);
    let fresh = |rows: Vec<TaskRecord>| -> Vec<TaskRecord> {
        let core = shared.core();
        rows.into_iter()
            .map(|mut r| match core.sched.task(&r.id) {
                Some(live) => live.clone(),
                None => {
                    core.sched.overlay_cold(&mut r);
                    r
                }
            })
            .collect()
    };
    if let Some(trace) = trace {
        let rows = shared.store.list_traced(trace, limit, before)?;
        return Ok(Response::Tasks(
            fresh(rows).into_iter().map(|r| r.info(None)).collect(),
        ));
    }
    let page: Vec<TaskRecord> = match state {
        Some(
            s
            @ (TaskState::Queued | TaskState::Running | TaskState::Waiting | TaskState::Scheduled),
        ) => {
            // Only the page is cloned, under the lock; cold tasks
            // (reloaded by a restart) on it are read from the store, with
            // what changed in memory laid over, and stay cold.
            let core = shared.core();
            let mut cold: Vec<TaskId> = core
                .sched
                .cold_in(s)
                .filter(|id| before.is_none_or(|b| **id < *b))
                .copied()
                .collect();
            if cold.len() > limit {
                cold.select_nth_unstable_by_key(limit, |id| std::cmp::Reverse(*id));
                cold.truncate(limit);
            }
            let mut refs: Vec<&TaskRecord> = core
                .sched
                .live_records()
                .filter(|r| r.state == s)
                .filter(|r| before.is_none_or(|b| r.id < *b))
                .collect();
            refs.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
            let mut page: Vec<TaskRecord> = refs.into_iter().take(limit).cloned().collect();
            for id in cold {
                if let Some(mut r) = shared.store.task(&id)? {
                    core.sched.overlay_cold(&mut r);
                    page.push(r);
                }
            }
            page.sort_unstable_by_key(|r| std::cmp::Reverse(r.id));
            page.truncate(limit);
            page
        }
        Some(s) => shared.store.list_finished(Some(s), limit, before)?,
        None => fresh(shared.store.list(None, limit, before)?),
    };
    Ok(Response::Tasks(
        page.into_iter().map(|r| r.info(None)).collect(),
    ))
}

/// Registered workers with a live connection, by name.
pub fn workers(shared: &Shared) -> Response {
    let now = shared.now();
    let mut out = registered(shared);
    // And those that went away lately, with when and why.
    let mut core = shared.core();
    for w in core.gone.listed(now) {
        if !out.iter().any(|o| o.key == w.key) {
            out.push(w.clone());
        }
    }
    drop(core);
    out.sort_by(|a, b| a.info.name.cmp(&b.info.name).then(a.key.cmp(&b.key)));
    Response::Workers(out)
}

/// The workers the scheduler has now (ready, draining, or down with their
/// leases waiting), by name: what the figures count.
pub fn registered(shared: &Shared) -> Vec<WorkerSummary> {
    let core = shared.core();
    let mut out: Vec<WorkerSummary> = core
        .sched
        .workers()
        .filter_map(|(key, _slots, running, seen)| core.summary_of(key, Some((running, seen))))
        .collect();
    out.sort_by(|a, b| a.info.name.cmp(&b.info.name).then(a.key.cmp(&b.key)));
    out
}

/// The group of dispatchers as this one sees it: each member's role and
/// log position (empty for a dispatcher that runs alone).
pub fn members(shared: &Shared) -> Vec<fabric_proto::wire::MemberView> {
    shared
        .group
        .as_ref()
        .map(crate::service::group::members)
        .unwrap_or_default()
}
