//! `fabric workers`: the workers registered with the dispatcher;
//! `fabric workers remove` is in `worker_remove`.

use std::path::Path;

use super::client::with_client;
use super::worker_remove;
use crate::cli::{WorkersArgs, WorkersCommand};
use crate::output::Output;

pub(crate) fn execute(args: &WorkersArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    if let Some(WorkersCommand::Remove(remove)) = &args.command {
        return worker_remove::execute(remove, cluster);
    }
    let workers = with_client(cluster, async |c| Ok(c.workers().await?))?;
    Output::new(args.list.json).workers(&workers);
    Ok(0)
}
