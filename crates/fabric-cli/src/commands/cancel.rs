//! `fabric cancel`: cancel a queued or running task.

use std::path::Path;

use super::client::with_client;
use super::task_opts;
use crate::cli::IdArgs;
use crate::output::Output;

pub(crate) fn execute(args: &IdArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let id = task_opts::task_id(&args.id)?;
    let info = with_client(cluster, async |c| Ok(c.cancel(id).await?))?;
    Output::new(args.json).task(&info);
    Ok(0)
}
