//! Job requests: submit (checked, stored and flushed with every task, all
//! or none), view, list, cancel, and the rescue (`retry`: queue again only
//! what did not succeed). The tasks are ordinary tasks that carry the job
//! id as their correlation id; their order is the dependency machine's.

use std::collections::HashSet;

use fabric_proto::wire::{ErrorBody, ErrorCode, Response};
use fabric_proto::{
    JobId, JobRecord, JobSpec, JobView, MAX_ACTIVE_JOBS, StepTask, StepView, TaskId,
};

use super::submit::{self, Batch};
use super::{Answer, RequestError};
use crate::jobs;
use crate::service::state::Shared;

/// Most jobs one list answers (each is looked at task by task).
pub const MAX_JOB_PAGE: u32 = 100;

/// One rescue at a time, so two rescues of one job queue its failed
/// tasks once.
static ONE_RESCUE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn refused(message: String) -> RequestError {
    RequestError::Refused(ErrorBody::new(ErrorCode::BadRequest, message))
}

/// Checks the DAG, stores the job and its tasks, flushes, then queues
/// them; answers the job's id and each step's task ids.
pub async fn submit(shared: &Shared, spec: JobSpec) -> Answer {
    submit_as(shared, spec, false).await
}

/// [`submit`]; with `scheduled`, a schedule's run, whose native programs
/// wait for a worker that allows them rather than being refused.
pub async fn submit_as(shared: &Shared, spec: JobSpec, scheduled: bool) -> Answer {
    let order = spec.check().map_err(|e| refused(e.to_string()))?;
    let active = active_jobs(shared);
    if active >= MAX_ACTIVE_JOBS {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::QueueFull,
            format!(
                "{active} jobs are unfinished; at most {MAX_ACTIVE_JOBS} run at once (wait for some, or cancel them)"
            ),
        )));
    }
    let job = JobRecord {
        id: JobId::new(),
        tasks: jobs::new_ids(&spec),
        spec,
        submitted_ms: shared.now(),
        rescues: 0,
    };
    let specs = jobs::expand(&job, &order, None);
    submit::admit(
        shared,
        specs,
        Batch::Job {
            record: &job,
            scheduled,
        },
    )
    .await
    .map_err(|e| step_named(e, &job, &order))?;
    tracing::info!(job = %job.id, tasks = job.all_tasks().count(), "job admitted");
    Ok(Response::JobSubmitted {
        id: job.id,
        tasks: job.tasks,
    })
}

/// A refusal of "task N of M" said as the step it belongs to.
fn step_named(e: RequestError, job: &JobRecord, order: &[usize]) -> RequestError {
    let name_of = |m: String| -> String {
        let Some(n) = m
            .strip_prefix("task ")
            .and_then(|r| r.split_once(" of "))
            .and_then(|(n, _)| n.parse::<usize>().ok())
        else {
            return m;
        };
        let mut seen = 0;
        for &i in order {
            let step = &job.spec.steps[i];
            if n <= seen + step.tasks() {
                let rest = m.split_once(": ").map_or(m.as_str(), |(_, r)| r);
                return format!("step {:?}: {rest}", step.name);
            }
            seen += step.tasks();
        }
        m
    };
    match e {
        RequestError::Refused(mut body) => {
            body.message = name_of(body.message);
            RequestError::Refused(body)
        }
        RequestError::NotFound(m) => RequestError::NotFound(name_of(m)),
        other => other,
    }
}

/// Jobs with unfinished tasks now (`--each` jobs too: their tasks carry
/// a job id as well).
fn active_jobs(shared: &Shared) -> usize {
    let core = shared.core();
    core.sched
        .live_records()
        .filter_map(|r| r.spec.trace.as_deref())
        .filter(|t| t.starts_with("job-"))
        .chain(core.sched.cold_jobs())
        .collect::<HashSet<_>>()
        .len()
}

fn record(shared: &Shared, id: &JobId) -> Result<JobRecord, RequestError> {
    shared
        .store
        .job(id)?
        .ok_or_else(|| RequestError::NotFound(format!("no job {id}")))
}

/// Where each task of `job` stands: its word and whether it is final.
fn words(shared: &Shared, job: &JobRecord) -> Result<Vec<Option<(String, bool)>>, RequestError> {
    job.all_tasks()
        .map(|id| {
            Ok(shared.task_info(id, false)?.map(|info| match info.status {
                Some(s) => (s.as_str().to_owned(), true),
                None => (info.state.as_str().to_owned(), false),
            }))
        })
        .collect()
}

fn view(shared: &Shared, job: &JobRecord, with_steps: bool) -> Result<JobView, RequestError> {
    let words = words(shared, job)?;
    let (state, counts) = jobs::tally(
        words
            .iter()
            .map(|w| w.as_ref().map(|(s, d)| (s.as_str(), *d))),
    );
    let mut steps = Vec::new();
    if with_steps {
        let mut words = words.into_iter();
        for (step, ids) in job.spec.steps.iter().zip(&job.tasks) {
            let tasks = ids
                .iter()
                .enumerate()
                .map(|(k, id)| StepTask {
                    id: *id,
                    item: step.each.get(k).map(|i| i.name.clone()),
                    status: words
                        .next()
                        .flatten()
                        .map_or_else(|| "lost".to_owned(), |(w, _)| w),
                })
                .collect();
            steps.push(StepView {
                name: step.name.clone(),
                after: step.parents().into_iter().map(str::to_owned).collect(),
                tasks,
            });
        }
    }
    Ok(JobView {
        id: job.id,
        name: job.spec.name.clone(),
        submitted_ms: job.submitted_ms,
        state,
        counts,
        rescues: job.rescues,
        steps,
    })
}

/// A job's state word (`running`, `succeeded`, `failed`), if it exists.
pub fn state_of(shared: &Shared, id: &JobId) -> Result<Option<String>, RequestError> {
    let Some(job) = shared.store.job(id)? else {
        return Ok(None);
    };
    Ok(Some(view(shared, &job, false)?.state.to_string()))
}

/// Whether any task of the job is unfinished.
pub fn is_live(shared: &Shared, id: &JobId) -> Result<bool, RequestError> {
    let Some(job) = shared.store.job(id)? else {
        return Ok(false);
    };
    let core = shared.core();
    Ok(job.all_tasks().any(|t| core.sched.is_live(t)))
}

/// One job with its steps.
pub fn get(shared: &Shared, id: &JobId) -> Answer {
    let job = record(shared, id)?;
    Ok(Response::Job(Box::new(view(shared, &job, true)?)))
}

/// Jobs, newest first, without their steps.
pub fn list(shared: &Shared, limit: u32, before: Option<&JobId>) -> Answer {
    let limit = limit.clamp(1, MAX_JOB_PAGE) as usize;
    let jobs = shared.store.jobs(limit, before)?;
    let views = jobs
        .iter()
        .map(|j| view(shared, j, false))
        .collect::<Result<_, _>>()?;
    Ok(Response::Jobs(views))
}

/// Cancels every unfinished task of the job, children first (so they end
/// `cancelled`, not `skipped`).
pub async fn cancel(shared: &Shared, id: JobId) -> Answer {
    let job = record(shared, &id)?;
    let order = job
        .spec
        .stored_order()
        .map_err(|e| RequestError::Internal(e.to_string()))?;
    let mut touched = 0u32;
    for &i in order.iter().rev() {
        for t in &job.tasks[i] {
            if !shared.core().sched.is_live(t) {
                continue;
            }
            match super::cancel::cancel(shared, *t).await {
                Ok(_) => touched += 1,
                // It ended meanwhile (or its parent's cancel skipped it).
                Err(RequestError::Conflict(_) | RequestError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(Response::JobTouched { id, tasks: touched })
}

/// The rescue: once the job has finished, its tasks that did not succeed
/// are queued again as new tasks (their children, skipped before, among
/// them), wired to the succeeded tasks' kept results.
pub async fn retry(shared: &Shared, id: JobId) -> Answer {
    let _one = ONE_RESCUE.lock().await;
    let mut job = record(shared, &id)?;
    let order = job
        .spec
        .stored_order()
        .map_err(|e| RequestError::Internal(e.to_string()))?;
    let words = words(shared, &job)?;
    let unfinished = words.iter().flatten().filter(|(_, done)| !done).count();
    if unfinished > 0 {
        return Err(RequestError::Conflict(format!(
            "job {id} is still running ({unfinished} tasks unfinished); wait for it, or cancel it first (fabric job cancel {id})"
        )));
    }
    let mut again = HashSet::new();
    let mut old = Vec::new();
    let all: Vec<TaskId> = job.all_tasks().copied().collect();
    for (t, w) in all.iter().zip(&words) {
        if !matches!(w, Some((s, _)) if s == "succeeded") {
            old.push(*t);
        }
    }
    if old.is_empty() {
        return Ok(Response::JobTouched { id, tasks: 0 });
    }
    let rerun: HashSet<TaskId> = old.iter().copied().collect();
    for step in &mut job.tasks {
        for t in step.iter_mut() {
            if rerun.contains(t) {
                *t = TaskId::new();
                again.insert(*t);
            }
        }
    }
    job.rescues += 1;
    let specs = jobs::expand(&job, &order, Some(&again));
    let count = specs.len() as u32;
    submit::admit(
        shared,
        specs,
        Batch::Job {
            record: &job,
            scheduled: false,
        },
    )
    .await
    .map_err(|e| step_named(e, &job, &order))?;
    for t in &old {
        shared.ledger.clear_dead_letter(t)?;
    }
    shared.ledger.durable().await?;
    tracing::info!(job = %id, tasks = count, "job rescued");
    Ok(Response::JobTouched { id, tasks: count })
}
