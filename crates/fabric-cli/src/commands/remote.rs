//! Client commands: `submit`, `status`, `result`, `cancel`, `tasks`, `workers`.

use std::path::PathBuf;

use fabric_proto::{LimitCaps, Priority, TaskId, TaskKind, TaskSpec, TaskState};

use super::cluster::block_on;
use super::{exec, task_opts};
use crate::cli::{IdArgs, JsonArg, SubmitArgs, TasksArgs};
use crate::output::{self, Report};
use crate::{profile, usage};

fn parse_id(s: &str) -> anyhow::Result<TaskId> {
    s.parse::<TaskId>().map_err(|e| usage(e.to_string()))
}

pub(crate) fn submit(args: SubmitArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    let priority: Priority = args
        .priority
        .parse()
        .map_err(|e| usage(format!("--priority: {e}")))?;
    let limits = task_opts::limits(&args.task, &LimitCaps::default())?;
    let env = task_opts::env(&args.task)?;
    let wasm = exec::read_module(&args.module)?;
    let input = task_opts::input(&args.task)?;
    block_on(async move {
        let client = profile::connect(cluster.as_deref()).await?;
        let module = client.upload_module(&wasm).await?;
        let spec = TaskSpec {
            kind: TaskKind::Wasm { module },
            args: args.args,
            env,
            input,
            limits,
            priority,
            retries: args.retries,
        };
        if !args.wait {
            let id = client.submit(spec).await?;
            output::submitted(&id, args.json);
            client.close();
            return Ok(0);
        }
        let report = Report::new(args.json, args.quiet);
        let info = client
            .submit_and_wait(spec, |id| report.waiting(&id), report.event_sink())
            .await?;
        client.close();
        Ok(report.task(&info))
    })
}

pub(crate) fn status(args: IdArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    let id = parse_id(&args.id)?;
    block_on(async move {
        let client = profile::connect(cluster.as_deref()).await?;
        let info = client.result(id).await?;
        client.close();
        output::status(&info, args.json);
        Ok(0)
    })
}

pub(crate) fn result(args: IdArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    let id = parse_id(&args.id)?;
    block_on(async move {
        let client = profile::connect(cluster.as_deref()).await?;
        let info = client.result(id).await?;
        client.close();
        if !info.state.is_terminal() {
            output::status(&info, args.json);
            return Err(usage(format!(
                "task {id} has not finished (it is {})",
                info.state
            )));
        }
        Ok(Report::new(args.json, false).task(&info))
    })
}

pub(crate) fn cancel(args: IdArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    let id = parse_id(&args.id)?;
    block_on(async move {
        let client = profile::connect(cluster.as_deref()).await?;
        let info = client.cancel(id).await?;
        client.close();
        output::status(&info, args.json);
        Ok(0)
    })
}

pub(crate) fn tasks(args: TasksArgs, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    let state = args
        .state
        .as_deref()
        .map(|s| {
            s.parse::<TaskState>()
                .map_err(|e| usage(format!("--state: {e}")))
        })
        .transpose()?;
    let before = args.before.as_deref().map(parse_id).transpose()?;
    if args.limit == 0 {
        return Err(usage("--limit must be at least 1"));
    }
    block_on(async move {
        let client = profile::connect(cluster.as_deref()).await?;
        let tasks = client.list(state, args.limit, before).await?;
        client.close();
        output::tasks(&tasks, args.json);
        Ok(0)
    })
}

pub(crate) fn workers(args: JsonArg, cluster: Option<PathBuf>) -> anyhow::Result<i32> {
    block_on(async move {
        let client = profile::connect(cluster.as_deref()).await?;
        let workers = client.workers().await?;
        client.close();
        output::workers(&workers, args.json);
        Ok(0)
    })
}
