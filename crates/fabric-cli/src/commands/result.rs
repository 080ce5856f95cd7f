//! `fabric result`: a finished task's output, exit code as `fabric exec`.

use std::path::Path;

use super::client::with_client;
use crate::NotFinished;
use crate::cli::ResultArgs;
use crate::output::{Output, Reporter};

pub(crate) fn execute(args: &ResultArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let dir = args.output_dir.as_deref();
    let args = &args.id;
    let info = with_client(cluster, async |c| {
        let id = c.resolve_task(&args.id).await?;
        Ok(c.result(id).await?)
    })?;
    let output = Output::new(args.json);
    if !info.state.is_terminal() {
        output.task(&info);
        return Err(NotFinished(format!(
            "task {} has not finished (it is {}): fabric wait {}",
            info.id, info.state, info.id
        ))
        .into());
    }
    let code = Reporter::new(output, false).task(&info);
    if let (Some(dir), Some(outcome)) = (dir, &info.outcome) {
        super::output_files::write_all(dir, &outcome.files, false)?;
    }
    Ok(code)
}
