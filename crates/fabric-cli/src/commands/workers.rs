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
    let (workers, members) = with_client(cluster, async |c| {
        let workers = c.workers().await?;
        // In a group, the dispatchers too (role and log position); a
        // dispatcher of before answers nothing here.
        let members = if args.list.json {
            Vec::new()
        } else {
            c.members().await.unwrap_or_default()
        };
        Ok((workers, members))
    })?;
    let out = Output::new(args.list.json);
    out.workers(&workers);
    if !members.is_empty() {
        out.members(&members);
    }
    Ok(0)
}
