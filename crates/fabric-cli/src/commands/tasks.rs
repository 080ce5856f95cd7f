//! `fabric tasks`: list tasks, newest first.

use std::path::Path;

use fabric_proto::TaskState;

use super::client::with_client;
use super::task_opts;
use crate::cli::TasksArgs;
use crate::output::Output;
use crate::usage;

pub(crate) fn execute(args: &TasksArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let state = args
        .state
        .as_deref()
        .map(|s| {
            s.parse::<TaskState>()
                .map_err(|e| usage(format!("--state: {e}")))
        })
        .transpose()?;
    let before = args.before.as_deref().map(task_opts::task_id).transpose()?;
    if args.limit == 0 {
        return Err(usage("--limit must be at least 1"));
    }
    let tasks = with_client(cluster, async |c| {
        Ok(c.list(state, args.limit, before).await?)
    })?;
    Output::new(args.json).tasks(&tasks);
    Ok(0)
}
