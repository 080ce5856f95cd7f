//! `fabric cancel`: cancel a queued or running task, or every task in a
//! state (`--state`, `--older-than`).

use std::path::Path;

use fabric_proto::TaskState;

use super::client::with_client;
use crate::cli::CancelArgs;
use crate::output::{self, Output};
use crate::usage;

/// Most tasks one bulk cancel looks at.
const MAX_BULK: usize = 100_000;

pub(crate) fn execute(args: &CancelArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let output = Output::new(args.json);
    if let Some(id) = &args.id {
        let info = with_client(cluster, async |c| {
            let id = c.resolve_task(id).await?;
            Ok(c.cancel(id).await?)
        })?;
        output.task(&info);
        return Ok(0);
    }
    if let Some(job) = &args.job {
        return cancel_job(job, output, cluster);
    }
    let state = match args.state.as_deref().map(str::trim) {
        Some("queued") => TaskState::Queued,
        Some("waiting") => TaskState::Waiting,
        Some("scheduled") => TaskState::Scheduled,
        Some("running") => TaskState::Running,
        Some(other) => {
            return Err(usage(format!(
                "--state {other}: cancel takes queued, scheduled, waiting or running (finished tasks are final)"
            )));
        }
        None => return Err(usage("give a task id, --state or --job")),
    };
    let cutoff = args.older_than.map(|d| {
        fabric_proto::now_ms().saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    });
    let (cancelled, gone) = with_client(cluster, async |c| {
        // Which tasks first, then each cancelled: a page is not disturbed
        // by cancels made while it is read.
        let ids = matching(c, Listed::State(state), |t| {
            cutoff.is_none_or(|cut| t.submitted_ms <= cut)
        })
        .await?;
        cancel_each(c, ids).await
    })?;
    said(output, &cancelled, gone, &format!("{state} "), "");
    Ok(0)
}

/// `--job JOB`: every unfinished task carrying the job's id.
fn cancel_job(job: &str, output: Output, cluster: Option<&Path>) -> anyhow::Result<i32> {
    fabric_proto::check_trace(job).map_err(|e| usage(format!("--job: {e}")))?;
    let (cancelled, gone) = with_client(cluster, async |c| {
        let ids = matching(c, Listed::Job(job), |t| {
            t.trace.as_deref() == Some(job) && !t.state.is_terminal()
        })
        .await?;
        cancel_each(c, ids).await
    })?;
    said(output, &cancelled, gone, "", &format!(" of job {job}"));
    Ok(0)
}

/// Where the tasks to cancel are listed from.
enum Listed<'a> {
    State(TaskState),
    Job(&'a str),
}

/// The ids of the tasks listed that `keep` accepts, newest first, paged
/// through (at most [`MAX_BULK`]).
async fn matching(
    c: &fabric_client::Client,
    listed: Listed<'_>,
    keep: impl Fn(&fabric_proto::TaskInfo) -> bool,
) -> anyhow::Result<Vec<fabric_proto::TaskId>> {
    const PAGE: u32 = 1_000;
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let page = match listed {
            Listed::State(state) => c.list(Some(state), PAGE, before).await?,
            Listed::Job(job) => c.list_traced(job, PAGE, before).await?,
        };
        let last = page.last().map(|t| t.id);
        let full = page.len() == PAGE as usize;
        ids.extend(page.into_iter().filter(|t| keep(t)).map(|t| t.id));
        if !full || ids.len() >= MAX_BULK {
            break;
        }
        before = last;
    }
    ids.truncate(MAX_BULK);
    Ok(ids)
}

/// Cancels each; the cancelled, and how many had finished meanwhile.
async fn cancel_each(
    c: &fabric_client::Client,
    ids: Vec<fabric_proto::TaskId>,
) -> anyhow::Result<(Vec<fabric_proto::TaskInfo>, u64)> {
    let (mut cancelled, mut gone) = (Vec::new(), 0u64);
    for id in ids {
        match c.cancel(id).await {
            Ok(info) => cancelled.push(info),
            // Finished meanwhile: nothing to cancel.
            Err(e) if e.code() == Some(fabric_proto::wire::ErrorCode::Conflict) => gone += 1,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((cancelled, gone))
}

/// The cancelled tasks, and a line saying how many (`cancelled 4 queued
/// tasks`, `cancelled 3 tasks of job ...`).
fn said(output: Output, cancelled: &[fabric_proto::TaskInfo], gone: u64, which: &str, of: &str) {
    output.tasks(cancelled);
    output::note(&format!(
        "cancelled {} {which}task{}{of}{}",
        cancelled.len(),
        if cancelled.len() == 1 { "" } else { "s" },
        if gone > 0 {
            format!("; {gone} finished before their cancel")
        } else {
            String::new()
        }
    ));
}
