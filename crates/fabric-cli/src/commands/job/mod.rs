//! `fabric job`: a job file's DAG submitted as one job, followed to its
//! end, listed, cancelled, and rescued (`retry`: rerun only what did not
//! succeed).

pub(crate) mod file;

use std::path::Path;
use std::time::Duration;

use fabric_client::Client;
use fabric_proto::{JobId, JobState};

use super::client::with_client;
use crate::cli::JobCommand;
use crate::output::{self, JobProgress, Output};
use crate::usage;

/// How often a followed job is looked at.
const POLL: Duration = Duration::from_millis(250);

pub(crate) fn execute(cmd: JobCommand, cluster: Option<&Path>) -> anyhow::Result<i32> {
    match cmd {
        JobCommand::Submit(args) => {
            // Read and checked before connecting: a bad file costs nothing.
            let loaded = file::load(&args.file)?;
            let output = Output::new(args.json);
            with_client(cluster, async move |client| {
                let names: Vec<String> = loaded.spec.steps.iter().map(|s| s.name.clone()).collect();
                let spec = loaded.upload(client).await?;
                let queued = client.submit_job(spec).await?;
                let steps: Vec<_> = names.into_iter().zip(queued.tasks).collect();
                output.job_queued(&queued.id, &steps, args.quiet);
                if !args.wait {
                    return Ok(0);
                }
                follow(client, queued.id, output, args.quiet).await
            })
        }
        JobCommand::Status(args) => {
            let id = job_id(&args.id)?;
            with_client(cluster, async move |client| {
                Output::new(args.json).job(&client.job(id).await?);
                Ok(0)
            })
        }
        JobCommand::List(args) => with_client(cluster, async move |client| {
            Output::new(args.json).jobs(&client.jobs(args.limit, None).await?);
            Ok(0)
        }),
        JobCommand::Cancel(args) => {
            let id = job_id(&args.id)?;
            with_client(cluster, async move |client| {
                let n = client.cancel_job(id).await?;
                Output::new(args.json).job_touched(&id, "cancelled", n);
                Ok(0)
            })
        }
        JobCommand::Retry(args) => {
            let id = job_id(&args.job.id)?;
            let output = Output::new(args.job.json);
            with_client(cluster, async move |client| {
                let n = client.retry_job(id).await?;
                output.job_touched(&id, "queued again", n);
                if n == 0 {
                    output::note("every task of the job had succeeded: nothing to rerun");
                    return Ok(0);
                }
                if !args.wait {
                    return Ok(0);
                }
                follow(client, id, output, false).await
            })
        }
    }
}

fn job_id(text: &str) -> anyhow::Result<JobId> {
    text.parse().map_err(|e| usage(format!("{e}")))
}

/// Follows a job to its end with one progress bar; 0 when every task
/// succeeded, 1 otherwise, 130 on Ctrl-C (the job keeps running).
async fn follow(client: &Client, id: JobId, output: Output, quiet: bool) -> anyhow::Result<i32> {
    let mut bar = None;
    loop {
        let view = tokio::select! {
            view = client.job(id) => view?,
            _ = tokio::signal::ctrl_c() => {
                if let Some(b) = &bar { JobProgress::finish(b) }
                output::note(&format!("job {id} keeps running: fabric job status {id}"));
                return Ok(130);
            }
        };
        let total: u64 = view.counts.values().sum();
        let done: u64 = view
            .steps
            .iter()
            .flat_map(|s| &s.tasks)
            .filter(|t| !matches!(t.status.as_str(), "queued" | "running" | "waiting"))
            .count() as u64;
        let b = bar.get_or_insert_with(|| JobProgress::new(output, quiet, total));
        b.set(done);
        if view.state != JobState::Running {
            b.finish();
            output.job_ended(&view, quiet);
            return Ok(if view.state == JobState::Succeeded {
                0
            } else {
                1
            });
        }
        tokio::time::sleep(POLL).await;
    }
}
