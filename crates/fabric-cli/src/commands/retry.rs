//! `fabric retry`: queue a dead letter again as a new task, or every dead
//! letter (`--dead-letters`).

use std::path::Path;

use super::client::with_client;
use super::tasks::{Filter, page};
use crate::cli::RetryArgs;
use crate::output::{self, Output};

/// Most dead letters one bulk retry queues again.
const MAX_BULK: usize = 100_000;

pub(crate) fn execute(args: &RetryArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let output = Output::new(args.json);
    if let Some(id) = &args.id {
        let id = with_client(cluster, async |c| {
            let id = c.resolve_task(id).await?;
            Ok(c.retry(id).await?)
        })?;
        output.submitted(&id);
        return Ok(0);
    }
    let new = with_client(cluster, async |c| {
        let mut dead = Vec::new();
        let mut before = None;
        loop {
            let (found, next) = page(c, Filter::DeadLetter, 1_000, before).await?;
            dead.extend(
                found
                    .into_iter()
                    .filter(|t| args.job.is_none() || t.trace == args.job)
                    .map(|t| t.id),
            );
            match next {
                Some(n) if dead.len() < MAX_BULK => before = Some(n),
                _ => break,
            }
        }
        dead.truncate(MAX_BULK);
        let mut new = Vec::with_capacity(dead.len());
        for id in dead {
            new.push(c.retry(id).await?);
        }
        Ok(new)
    })?;
    for id in &new {
        output.submitted(id);
    }
    output::note(&format!(
        "retried {} dead letter{} as new tasks",
        new.len(),
        if new.len() == 1 { "" } else { "s" }
    ));
    Ok(0)
}
