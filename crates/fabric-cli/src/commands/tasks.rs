//! `fabric tasks`: list tasks, newest first, by state or by final status.

use std::path::Path;

use fabric_client::Client;
use fabric_proto::wire::TaskCounts;
use fabric_proto::{TaskId, TaskInfo, TaskState, TaskStatus};

use super::client::with_client;
use crate::cli::TasksArgs;
use crate::output::{self, Output};
use crate::units::format_count;
use crate::usage;

/// Finished tasks one status filter looks through at most (so a rare
/// status over a long history answers in bounded time).
const MAX_SCANNED: usize = 100_000;
/// Tasks fetched per request while filtering by status.
const PAGE: u32 = 1_000;

/// What `--state` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Filter {
    All,
    State(TaskState),
    Status(TaskStatus),
    DeadLetter,
}

fn filter(word: Option<&str>) -> anyhow::Result<Filter> {
    let Some(word) = word else {
        return Ok(Filter::All);
    };
    let word = word.trim().to_ascii_lowercase().replace('-', "_");
    if word == "dead_letter" || word == "dead" {
        return Ok(Filter::DeadLetter);
    }
    if let Ok(state) = word.parse::<TaskState>() {
        return Ok(Filter::State(state));
    }
    if let Some(status) = TaskStatus::ALL.iter().find(|s| s.as_str() == word) {
        return Ok(Filter::Status(*status));
    }
    let statuses: Vec<&str> = TaskStatus::ALL.iter().map(|s| s.as_str()).collect();
    Err(usage(format!(
        "--state {word}: not a state or status; use queued, waiting, running, done, {}, or dead_letter",
        statuses.join(", ")
    )))
}

pub(crate) fn execute(args: &TasksArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let filter = filter(args.state.as_deref())?;
    if args.limit == 0 {
        return Err(usage("--limit must be at least 1"));
    }
    let out = Output::new(args.json);
    let (tasks, next, counts) = with_client(cluster, async |c| {
        let before = match &args.before {
            Some(b) => Some(c.resolve_task(b).await?),
            None => None,
        };
        let (tasks, next) = match &args.trace {
            Some(trace) => {
                // One more than shown says whether there is a next page;
                // and only matching tasks count, whatever the dispatcher.
                let mut tasks: Vec<_> = c
                    .list_traced(trace, args.limit.saturating_add(1), before)
                    .await?
                    .into_iter()
                    .filter(|t| t.trace.as_deref() == Some(trace.as_str()))
                    .collect();
                let more = tasks.len() > args.limit as usize;
                tasks.truncate(args.limit as usize);
                let next = more.then(|| tasks.last().map(|t| t.id)).flatten();
                (tasks, next)
            }
            None => page(c, filter, args.limit, before).await?,
        };
        let counts = match out {
            Output::Human if args.trace.is_none() => Some(c.counts().await?),
            _ => None,
        };
        Ok((tasks, next, counts))
    })?;
    out.tasks(&tasks);
    if let Some(counts) = counts {
        let total = total(&counts, filter).max(tasks.len() as u64);
        let next = next.map(|id| {
            format!(
                "; next page: fabric tasks --before {id}{}",
                args.state
                    .as_deref()
                    .map(|s| format!(" --state {s}"))
                    .unwrap_or_default()
            )
        });
        output::note(&format!(
            "{} of {}{}",
            format_count(tasks.len() as u64),
            format_count(total),
            next.unwrap_or_default()
        ));
    }
    Ok(0)
}

/// How many tasks the filter matches in all.
fn total(c: &TaskCounts, filter: Filter) -> u64 {
    let finished: u64 = c.finished.iter().map(|(_, n)| n).sum();
    match filter {
        Filter::All => c.total,
        Filter::State(TaskState::Queued) => c.queued,
        Filter::State(TaskState::Running) => c.running,
        Filter::State(TaskState::Done) => {
            finished.saturating_sub(c.finished(TaskStatus::Cancelled))
        }
        Filter::State(TaskState::Cancelled) => c.finished(TaskStatus::Cancelled),
        // Not counted apart: the listing's own length stands.
        Filter::State(TaskState::Waiting | TaskState::Scheduled) => 0,
        Filter::Status(s) => c.finished(s),
        Filter::DeadLetter => c.dead_letters,
    }
}

/// Up to `limit` matching tasks older than `before`, and where the next
/// page starts when there may be more.
pub(super) async fn page(
    c: &Client,
    filter: Filter,
    limit: u32,
    mut before: Option<TaskId>,
) -> anyhow::Result<(Vec<TaskInfo>, Option<TaskId>)> {
    let keep = |t: &TaskInfo| match filter {
        Filter::Status(s) => t.status == Some(s),
        Filter::DeadLetter => t.dead_letter,
        Filter::All | Filter::State(_) => true,
    };
    if let Filter::All | Filter::State(_) = filter {
        let state = match filter {
            Filter::State(s) => Some(s),
            _ => None,
        };
        let tasks = c.list(state, limit, before).await?;
        let next = (tasks.len() == limit as usize)
            .then(|| tasks.last().map(|t| t.id))
            .flatten();
        return Ok((tasks, next));
    }
    // Final statuses are only on finished tasks: scan those (the
    // dispatcher then leaves its live tasks out).
    let state = match filter {
        Filter::Status(TaskStatus::Cancelled) => TaskState::Cancelled,
        _ => TaskState::Done,
    };
    let mut found = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = c.list(Some(state), PAGE, before).await?;
        let exhausted = batch.len() < PAGE as usize;
        scanned += batch.len();
        for t in batch {
            before = Some(t.id);
            if keep(&t) {
                found.push(t);
                if found.len() == limit as usize {
                    return Ok((found, before));
                }
            }
        }
        if exhausted {
            return Ok((found, None));
        }
        if scanned >= MAX_SCANNED {
            return Ok((found, before));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_status_is_a_filter() {
        assert_eq!(
            filter(Some("queued")).unwrap(),
            Filter::State(TaskState::Queued)
        );
        assert_eq!(
            filter(Some("timed_out")).unwrap(),
            Filter::Status(TaskStatus::TimedOut)
        );
        assert_eq!(
            filter(Some("TIMED-OUT")).unwrap(),
            Filter::Status(TaskStatus::TimedOut)
        );
        assert_eq!(filter(Some("dead_letter")).unwrap(), Filter::DeadLetter);
        assert_eq!(filter(None).unwrap(), Filter::All);
        for s in TaskStatus::ALL {
            assert!(filter(Some(s.as_str())).is_ok(), "{s:?}");
        }
        let err = filter(Some("sleeping")).unwrap_err().to_string();
        assert!(err.contains("fuel_exhausted"), "{err}");
    }
}
