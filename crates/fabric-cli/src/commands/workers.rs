//! `fabric workers`: the workers registered with the dispatcher.

use std::path::Path;

use super::client::with_client;
use crate::cli::JsonArg;
use crate::output::Output;

pub(crate) fn execute(args: &JsonArg, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let workers = with_client(cluster, async |c| Ok(c.workers().await?))?;
    Output::new(args.json).workers(&workers);
    Ok(0)
}
