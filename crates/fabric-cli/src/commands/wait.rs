//! `fabric wait`: follow a task until it ends and print its result.

use std::path::Path;

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
            info = waited => Ok(report.task(&info?)),
            () = limit => Err(NotFinished(format!(
                "task {id} did not finish within --wait-timeout; it keeps running: fabric wait {id}, fabric cancel {id}"
            ))
            .into()),
            _ = tokio::signal::ctrl_c() => {
                output::note(&format!("task {id} keeps running: fabric wait {id}, fabric cancel {id}"));
                Ok(130)
            }
        }
    })
}
