//! `fabric cancel`: cancel a queued or running task.

use std::path::Path;

use super::client::with_client;
use crate::cli::IdArgs;
use crate::output::Output;

pub(crate) fn execute(args: &IdArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let info = with_client(cluster, async |c| {
        let id = c.resolve_task(&args.id).await?;
        Ok(c.cancel(id).await?)
    })?;
    Output::new(args.json).task(&info);
    Ok(0)
}
