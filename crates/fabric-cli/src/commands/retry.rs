//! `fabric retry`: queue a dead letter again as a new task.

use std::path::Path;

use super::client::with_client;
use crate::cli::IdArgs;
use crate::output::Output;

pub(crate) fn execute(args: &IdArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let id = with_client(cluster, async |c| {
        let id = c.resolve_task(&args.id).await?;
        Ok(c.retry(id).await?)
    })?;
    Output::new(args.json).submitted(&id);
    Ok(0)
}
