//! `fabric workers remove KEY`: forget a worker's key, close its
//! connection, requeue its tasks (admin only).

use std::path::Path;

use super::client::with_client;
use crate::cli::WorkerRemoveArgs;
use crate::output::Output;

pub(crate) fn execute(args: &WorkerRemoveArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let (key, connected, requeued) =
        with_client(cluster, async |c| Ok(c.remove_worker(&args.key).await?))?;
    Output::new(args.json).worker_removed(key, connected, requeued);
    Ok(0)
}
