//! `fabric run`: an allow-listed native command on some worker, followed
//! to its end with its output as it comes.

use std::path::Path;

use fabric_proto::{TaskKind, TaskSpec};

use super::client::with_client;
use super::output_files;
use super::submit::{Follow, OnInterrupt, queue};
use super::task_opts;
use crate::cli::RunArgs;
use crate::output::Output;
use crate::usage;

/// The native task `args` describe, its files uploaded, with what the
/// cluster's caps allowed (`fabric schedule add ... -- run ...` builds its
/// task this way too).
pub(crate) async fn task_of(
    client: &fabric_client::Client,
    args: &RunArgs,
) -> anyhow::Result<(TaskSpec, task_opts::Checked)> {
    let priority = task_opts::priority(&args.queue.priority)?;
    let env = task_opts::env(&args.task)?;
    let secrets = task_opts::secrets(&args.queue, &env)?;
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| usage("give the program to run after `--`: fabric run -- PROGRAM ARGS"))?;
    let trace = task_opts::trace(args.queue.trace.as_deref())?;
    let c = task_opts::checked(client, &args.task, None, args.queue.retries).await?;
    for g in &args.outputs {
        fabric_proto::check_relative_path(g)
            .map_err(|e| usage(format!("--output {e}: a glob relative to the task's dir")))?;
    }
    let files = output_files::stage(client, &args.files, c.caps.max_input_bytes).await?;
    let (after, input_from) = task_opts::links(client, &args.queue).await?;
    let spec = TaskSpec {
        kind: TaskKind::Command {
            program: program.clone(),
            files,
            outputs: args.outputs.clone(),
        },
        args: rest.to_vec(),
        env,
        secrets,
        input: c.input.clone(),
        input_blob: None,
        limits: c.limits,
        priority,
        retries: c.retries,
        trace,
        require: task_opts::require(&args.queue.require)?,
        after,
        input_from,
        files_from: task_opts::after(client, &args.files_from).await?,
        fan_in: Vec::new(),
        not_before_ms: task_opts::not_before(&args.queue)?,
    };
    Ok((spec, c))
}

pub(crate) fn execute(args: RunArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    let (_, rest) = args
        .command
        .split_first()
        .ok_or_else(|| usage("give the program to run after `--`: fabric run -- PROGRAM ARGS"))?;
    let rest = rest.to_vec();
    let output = Output::new(args.queue.json);
    with_client(cluster, async move |client| {
        let (spec, c) = task_of(client, &args).await?;
        if let Some(pattern) = &args.each {
            // One task per file: the file staged beside the others, and
            // `{}` in the command its path.
            let job = super::each::job_id();
            let mut specs = Vec::new();
            for file in super::each::files(pattern)? {
                let name = file.to_string_lossy().into_owned();
                let mut staged = spec.clone();
                staged.args = rest.iter().map(|a| a.replace("{}", &name)).collect();
                let extra = output_files::stage(client, &[file], c.caps.max_input_bytes).await?;
                if let TaskKind::Command { files, .. } = &mut staged.kind {
                    files.extend(extra);
                }
                staged.trace = Some(job.clone());
                specs.push(staged);
            }
            let quiet = args.queue.quiet;
            return super::each::submit_all(client, &job, specs, output, quiet, !args.detach).await;
        }
        let follow = if args.detach {
            Follow::No
        } else {
            Follow::UntilDone(OnInterrupt::Cancel)
        };
        let (code, info) = queue(client, spec, output, args.queue.quiet, follow).await?;
        if let Some(files) = info
            .as_ref()
            .and_then(|i| i.outcome.as_ref())
            .map(|o| &o.files)
        {
            output_files::write_all(Path::new("."), files, args.queue.quiet)?;
        }
        Ok(code)
    })
}
