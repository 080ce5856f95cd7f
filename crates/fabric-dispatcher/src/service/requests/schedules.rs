//! Schedules: add (admin), list, show, pause, resume, remove (admin), run
//! now; and the firing of due runs from the tick (`fire_due`). Each run is
//! an ordinary task whose trace id names the schedule and its planned time
//! (`sched-NAME-2026-12-07T02:00:00Z`). The plan is `crate::schedules`.

use fabric_proto::wire::{ErrorBody, ErrorCode, Response};
use std::sync::atomic::Ordering;

use fabric_proto::{
    CatchUpPolicy, MAX_SCHEDULES, Overlap, ScheduleAction, ScheduleRecord, ScheduleRun,
    ScheduleSpec, check_schedule_name,
};

use super::{Answer, RequestError};
use crate::schedules::{self, CatchUp, Plan};
use crate::service::state::Shared;

fn bad(message: String) -> RequestError {
    RequestError::Refused(ErrorBody::new(ErrorCode::BadRequest, message))
}

fn plan(spec: &ScheduleSpec) -> Result<Plan, String> {
    Plan::parse(&spec.cron, &spec.tz)
}

/// Adds a schedule: its expression, zone and task checked (the task as a
/// submit would be), stored and flushed before the answer.
pub async fn add(shared: &Shared, spec: ScheduleSpec) -> Answer {
    let _one = shared.schedules_lock.lock().await;
    check_schedule_name(&spec.name).map_err(bad)?;
    if spec.cron.len() > 256 || spec.tz.len() > 64 {
        return Err(bad("--cron is at most 256 bytes, --tz at most 64".into()));
    }
    let plan = plan(&spec).map_err(bad)?;
    let secrets = spec.task.as_ref().is_some_and(|t| !t.secrets.is_empty())
        || spec
            .job
            .as_ref()
            .is_some_and(|j| j.steps.iter().any(|s| !s.secrets.is_empty()));
    if secrets {
        return Err(bad(
            "a schedule cannot carry secrets: they would have to be kept for every run, and a secret is dropped when its task ends"
                .into(),
        ));
    }
    match (&spec.task, &spec.job) {
        (Some(task), None) => check_task(shared, task)?,
        (None, Some(job)) => {
            job.check().map_err(|e| bad(e.to_string()))?;
            if spec.overlap == Overlap::Queue {
                return Err(bad(
                    "--overlap queue: a job run cannot wait for the previous job; use skip or allow".into(),
                ));
            }
        }
        _ => {
            return Err(bad(
                "a schedule runs a task or a job: give exactly one".into()
            ));
        }
    }
    if shared.store.schedule(&spec.name)?.is_some() {
        return Err(RequestError::Conflict(format!(
            "a schedule named {:?} exists; remove it first, or pick another name",
            spec.name
        )));
    }
    if shared.store.schedule_count() >= MAX_SCHEDULES {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::QueueFull,
            format!("{MAX_SCHEDULES} schedules exist; at most {MAX_SCHEDULES} (remove some)"),
        )));
    }
    let now = shared.now();
    let rec = ScheduleRecord {
        next_ms: plan.next_after(now),
        spec,
        paused: false,
        runs: Vec::new(),
        created_ms: now,
    };
    shared.ledger.save_schedule(&rec)?;
    durable_then_note(shared).await?;
    tracing::info!(schedule = %rec.spec.name, cron = %rec.spec.cron, tz = %rec.spec.tz, "schedule added");
    Ok(Response::Schedule(Box::new(view(shared, rec))))
}

/// A schedule's task, checked as a submit would check it.
fn check_task(shared: &Shared, task: &fabric_proto::TaskSpec) -> Result<(), RequestError> {
    crate::admission::check_spec(task, &shared.cfg.caps).map_err(RequestError::Refused)?;
    if task.not_before_ms.is_some() {
        return Err(bad(
            "a schedule's task takes no --delay or --at: its times are the schedule's".into(),
        ));
    }
    if task.input.len() > fabric_proto::INLINE_INPUT_MAX {
        return Err(bad(format!(
            "a schedule's task carries at most {} bytes of input inline; upload a bigger one as a blob (input_blob)",
            fabric_proto::INLINE_INPUT_MAX
        )));
    }
    if task.trace.is_some() || !task.after.is_empty() || task.input_from.is_some() {
        return Err(bad(
            "a schedule's task has no trace, after or input_from of its own: each run gets its own trace id".into(),
        ));
    }
    if let fabric_proto::TaskKind::Wasm { module } = &task.kind
        && !shared.store.has_module(module)?
    {
        return Err(RequestError::NotFound(format!(
            "module {module} is not stored on the dispatcher; upload it first"
        )));
    }
    Ok(())
}

/// A schedule with its runs' tasks' states or statuses.
fn view(shared: &Shared, mut rec: ScheduleRecord) -> ScheduleRecord {
    for run in &mut rec.runs {
        if let Some(id) = run.task {
            run.status = shared.task_info(&id, false).ok().flatten().map(|i| {
                i.status
                    .map_or_else(|| i.state.as_str().to_owned(), |s| s.as_str().to_owned())
            });
        } else if let Some(id) = run.job {
            run.status = super::jobs::state_of(shared, &id).ok().flatten();
        }
    }
    rec
}

fn named(shared: &Shared, name: &str) -> Result<ScheduleRecord, RequestError> {
    shared
        .store
        .schedule(name)?
        .ok_or_else(|| RequestError::NotFound(format!("no schedule {name:?}")))
}

/// Every schedule (with only its last run looked at).
pub fn list(shared: &Shared) -> Answer {
    let all = shared
        .store
        .schedules()?
        .into_iter()
        .map(|mut r| {
            let keep = r.runs.len().saturating_sub(1);
            r.runs.drain(..keep);
            // A list shows when and how, not what: one schedule's whole
            // spec is `show`'s (so a list of 1,000 fits a frame).
            r.spec.task = None;
            r.spec.job = None;
            view(shared, r)
        })
        .collect();
    Ok(Response::Schedules(all))
}

/// One schedule with its latest runs.
pub fn get(shared: &Shared, name: &str) -> Answer {
    Ok(Response::Schedule(Box::new(view(
        shared,
        named(shared, name)?,
    ))))
}

/// Pause, resume, remove or run now.
pub async fn set(shared: &Shared, name: &str, action: ScheduleAction) -> Answer {
    let _one = shared.schedules_lock.lock().await;
    let mut rec = named(shared, name)?;
    let now = shared.now();
    match action {
        ScheduleAction::Pause => rec.paused = true,
        ScheduleAction::Resume => {
            rec.paused = false;
            // From the next planned time: what passed while paused is not
            // caught up.
            rec.next_ms = plan(&rec.spec).ok().and_then(|p| p.next_after(now));
        }
        ScheduleAction::Remove => {
            shared.ledger.remove_schedule(name)?;
            durable_then_note(shared).await?;
            tracing::info!(schedule = %name, "schedule removed");
            return Ok(Response::Schedule(Box::new(view(shared, rec))));
        }
        ScheduleAction::RunNow => {
            let run = start(shared, &rec, now, Some("run now".to_owned())).await?;
            rec.remember(run);
        }
    }
    shared.ledger.save_schedule(&rec)?;
    durable_then_note(shared).await?;
    Ok(Response::Schedule(Box::new(view(shared, rec))))
}

/// Submits one run planned for `planned`, unless the overlap policy says
/// otherwise; the run as remembered.
async fn start(
    shared: &Shared,
    rec: &ScheduleRecord,
    planned: u64,
    note: Option<String>,
) -> Result<ScheduleRun, RequestError> {
    let at = chrono::DateTime::from_timestamp_millis(i64::try_from(planned).unwrap_or(0))
        .map_or_else(String::new, |t| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
    let skipped = |what: String| ScheduleRun {
        planned_ms: planned,
        task: None,
        job: None,
        note: Some(format!("skipped: the previous run ({what}) is unfinished")),
        status: None,
    };
    if let Some(job) = &rec.spec.job {
        let previous = rec.runs.iter().rev().find_map(|r| r.job);
        if let Some(p) = previous
            && rec.spec.overlap == Overlap::Skip
            && super::jobs::is_live(shared, &p)?
        {
            return Ok(skipped(format!("job {p}")));
        }
        let mut job = job.clone();
        job.name = format!("{}-{at}", rec.spec.name);
        return match super::jobs::submit_as(shared, job, true).await? {
            Response::JobSubmitted { id, .. } => Ok(ScheduleRun {
                planned_ms: planned,
                task: None,
                job: Some(id),
                note,
                status: None,
            }),
            _ => Err(RequestError::Internal(
                "unexpected answer to a job submit".into(),
            )),
        };
    }
    let Some(task) = &rec.spec.task else {
        return Err(RequestError::Internal(
            "a schedule without a task or a job".into(),
        ));
    };
    let previous = rec.runs.iter().rev().find_map(|r| r.task);
    let unfinished = previous.filter(|p| shared.core().sched.is_live(p));
    let mut task = task.clone();
    match (rec.spec.overlap, unfinished) {
        (Overlap::Skip, Some(p)) => return Ok(skipped(format!("task {p}"))),
        (Overlap::Queue, Some(p)) => task.after = vec![p],
        _ => {}
    }
    task.trace = Some(format!("sched-{}-{at}", rec.spec.name));
    let admitted = super::submit::submit_scheduled(shared, task).await?;
    Ok(ScheduleRun {
        planned_ms: planned,
        task: Some(admitted.id),
        job: None,
        note,
        status: None,
    })
}

/// Fires the schedules that are due, as often as the tick runs, in a task
/// of its own (a slow firing never holds up leases and heartbeats). A run
/// that cannot be submitted (queue full, module gone) is remembered with
/// the reason.
pub(crate) async fn fire_loop(shared: std::sync::Arc<Shared>) {
    let period = super::super::ticker::period(&shared);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A planned time found within two periods is on time.
    let grace = u64::try_from(period.as_millis()).unwrap_or(1_000) * 2;
    loop {
        interval.tick().await;
        if !shared.leading() {
            continue;
        }
        if let Err(e) = fire(&shared, grace.max(schedules::ON_TIME_GRACE_MS)).await {
            tracing::warn!(error = %e, "firing schedules failed; trying again at the next tick");
        }
    }
}

async fn fire(shared: &Shared, grace: u64) -> Result<(), RequestError> {
    let now = shared.now();
    // The store is read only when some schedule may be due.
    if now < shared.schedules_due.load(Ordering::Acquire) {
        return Ok(());
    }
    let _one = shared.schedules_lock.lock().await;
    let due: Vec<ScheduleRecord> = shared
        .store
        .schedules()?
        .into_iter()
        .filter(|r| !r.paused && r.next_ms.is_some_and(|n| n <= now))
        .collect();
    for rec in due {
        // Read again under the lock: a pause or removal may have won.
        let Some(mut rec) = shared.store.schedule(&rec.spec.name)? else {
            continue;
        };
        let (Some(next), false) = (rec.next_ms, rec.paused) else {
            continue;
        };
        let Ok(plan) = plan(&rec.spec) else {
            // It parsed when added; a zone database or croner that reads it
            // differently now stops it, said once.
            rec.next_ms = None;
            rec.remember(ScheduleRun {
                planned_ms: next,
                task: None,
                job: None,
                note: Some("stopped: its expression or zone no longer parses".to_owned()),
                status: None,
            });
            shared.ledger.save_schedule(&rec)?;
            continue;
        };
        let policy = match rec.spec.catch_up {
            CatchUpPolicy::One => CatchUp::One,
            CatchUpPolicy::None => CatchUp::None,
        };
        let d = schedules::due(&plan, next, now, policy, grace);
        if d.missed > 0 {
            rec.remember(ScheduleRun {
                planned_ms: next,
                task: None,
                job: None,
                note: Some(format!(
                    "{} planned run(s) passed while the dispatcher was down ({} catch-up)",
                    d.missed, rec.spec.catch_up
                )),
                status: None,
            });
        }
        if let Some(planned) = d.run {
            // The planned time is taken, durably, before its run is
            // submitted: a crash in between loses that run rather than
            // running it twice.
            rec.next_ms = d.next;
            shared.ledger.save_schedule(&rec)?;
            shared.ledger.durable().await?;
            let note = (d.missed > 0 || now.saturating_sub(planned) > grace)
                .then(|| "catch-up".to_owned());
            let run = match start(shared, &rec, planned, note).await {
                Ok(run) => run,
                Err(e) => ScheduleRun {
                    planned_ms: planned,
                    task: None,
                    job: None,
                    note: Some(format!("not submitted: {e}")),
                    status: None,
                },
            };
            if let Some(id) = run.task {
                tracing::info!(schedule = %rec.spec.name, task_id = %id, "schedule fired");
            }
            rec.remember(run);
        }
        rec.next_ms = d.next;
        shared.ledger.save_schedule(&rec)?;
    }
    shared.ledger.durable().await?;
    note_next_due(shared)
}

/// Waits until the schedule writes before it are durable, then notes when
/// the next schedule is due: in a group a write reaches this member's
/// store only when applied, so a note taken before reads the store
/// without it. When the wait fails the write may be stored all the same
/// (on one dispatcher it is in sled, only its flush failed): the next tick
/// reads the store rather than trust the old note.
async fn durable_then_note(shared: &Shared) -> Result<(), RequestError> {
    if let Err(e) = shared.ledger.durable().await {
        shared.schedules_due.store(0, Ordering::Release);
        return Err(e.into());
    }
    note_next_due(shared)
}

/// Remembers when the earliest unpaused schedule is due next, so that
/// ticks before then read nothing.
fn note_next_due(shared: &Shared) -> Result<(), RequestError> {
    let next = shared
        .store
        .schedules()?
        .iter()
        .filter(|r| !r.paused)
        .filter_map(|r| r.next_ms)
        .min()
        .unwrap_or(u64::MAX);
    shared.schedules_due.store(next, Ordering::Release);
    Ok(())
}
