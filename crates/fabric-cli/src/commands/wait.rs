//! `fabric wait`: follow a task until it ends and print its result.

use std::path::Path;
use std::time::Duration;

use fabric_client::Client;
use fabric_proto::TaskId;

use super::client::with_client;
use crate::NotFinished;
use crate::cli::WaitArgs;
use crate::output::{self, Output, Reporter};

pub(crate) fn execute(args: &WaitArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let output = Output::new(args.json);
    with_client(cluster, async |client| {
        let id = client.resolve_task(&args.id).await?;
        let report = Reporter::new(output, args.quiet);
        let waited = client.wait(id, report.event_sink());
        let limit = async {
            match args.wait_timeout {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            info = waited => match info {
                Ok(info) => Ok(report.task(&info)),
                Err(e) => {
                    report.clear();
                    Err(lost_while_waiting(id, e))
                }
            },
            () = show_state(client, &report, || Some(id)) => unreachable!("shows until the wait ends"),
            () = limit => {
                report.clear();
                Err(NotFinished(format!("task {id} did not finish within --wait-timeout; it {}", keeps_running(id))).into())
            }
            _ = tokio::signal::ctrl_c() => {
                report.clear();
                output::note(&format!("task {id} {}", keeps_running(id)));
                Ok(130)
            }
        }
    })
}

/// A wait that ended without the task's end: when the dispatcher was
/// lost, says so and how to go on, as Ctrl-C does.
pub(crate) fn lost_while_waiting(id: TaskId, e: fabric_client::ClientError) -> anyhow::Error {
    if e.is_connection_lost() {
        anyhow::Error::new(e).context(format!(
            "lost the dispatcher while waiting for task {id}, which {} (once the dispatcher is back)",
            keeps_running(id)
        ))
    } else {
        e.into()
    }
}

/// What to tell someone who stops waiting on `id`.
pub(crate) fn keeps_running(id: TaskId) -> String {
    format!("keeps running: fabric wait {id}, fabric cancel {id}")
}

/// Keeps the reporter's state line current (queued and why, running where,
/// which attempt) while a wait runs, on a terminal; never returns.
pub(crate) async fn show_state(
    client: &Client,
    report: &Reporter,
    id: impl Fn() -> Option<TaskId>,
) {
    if !report.shows_state() {
        return std::future::pending().await;
    }
    loop {
        if let Some(id) = id()
            && let Ok(info) = client.status(id).await
        {
            report.state(&info);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
