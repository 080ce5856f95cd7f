//! `fabric result`: a finished task's output, exit code as `fabric exec`.

use std::path::Path;

use super::client::with_client;
use super::task_opts;
use crate::cli::IdArgs;
use crate::output::{Output, Reporter};
use crate::usage;

pub(crate) fn execute(args: &IdArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let id = task_opts::task_id(&args.id)?;
    let info = with_client(cluster, async |c| Ok(c.result(id).await?))?;
    let output = Output::new(args.json);
    if !info.state.is_terminal() {
        output.task(&info);
        return Err(usage(format!(
            "task {id} has not finished (it is {})",
            info.state
        )));
    }
    Ok(Reporter::new(output, false).task(&info))
}
