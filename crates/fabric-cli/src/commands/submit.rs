//! `fabric submit`: queue a wasm task; with `--wait`, print its result.

use std::path::Path;

use fabric_proto::{TaskKind, TaskSpec};

use super::client::with_client;
use super::task_opts;
use crate::cli::SubmitArgs;
use crate::output::{self, Output, Reporter};

pub(crate) fn execute(args: SubmitArgs, cluster: Option<&Path>) -> anyhow::Result<i32> {
    // The module is found (or built) before connecting.
    let module_path = super::crate_build::module_path(&args.module, args.bin.as_deref())?;
    task_opts::read_module(&module_path)?;
    let output = Output::new(args.queue.json);
    with_client(cluster, async move |client| {
        let (spec, c) = task_of(client, &args).await?;
        if let Some(pattern) = &args.each {
            // One task per file, the file its input.
            let job = super::each::job_id();
            let mut specs = Vec::new();
            for file in super::each::files(pattern)? {
                let input = task_opts::file_input(&file, c.caps.max_input_bytes)?;
                specs.push(TaskSpec {
                    input,
                    trace: Some(job.clone()),
                    ..spec.clone()
                });
            }
            let quiet = args.queue.quiet;
            return super::each::submit_all(client, &job, specs, output, quiet, args.wait).await;
        }
        let follow = if args.wait {
            Follow::UntilDone(OnInterrupt::LeaveRunning)
        } else {
            Follow::No
        };
        Ok(queue(client, spec, output, args.queue.quiet, follow)
            .await?
            .0)
    })
}

/// The task `args` describe, its module uploaded, with what the cluster's
/// caps allowed. Everything the cluster would refuse is refused here first,
/// in the flags' terms, before a byte is uploaded. (`fabric schedule add
/// ... -- submit ...` builds its task this way too.)
pub(crate) async fn task_of(
    client: &fabric_client::Client,
    args: &SubmitArgs,
) -> anyhow::Result<(TaskSpec, task_opts::Checked)> {
    let priority = task_opts::priority(&args.queue.priority)?;
    let env = task_opts::env(&args.task)?;
    let secrets = task_opts::secrets(&args.queue, &env)?;
    let module_path = super::crate_build::module_path(&args.module, args.bin.as_deref())?;
    let wasm = task_opts::read_module(&module_path)?;
    let trace = task_opts::trace(args.queue.trace.as_deref())?;
    let c = task_opts::checked(client, &args.task, args.fuel, args.queue.retries).await?;
    task_opts::module_fits(&module_path, wasm.len(), c.caps.max_module_bytes)?;
    let module = client.upload_module(&wasm).await?;
    let (after, input_from) = task_opts::links(client, &args.queue).await?;
    let spec = TaskSpec {
        kind: TaskKind::Wasm { module },
        args: args.args.clone(),
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
        files_from: Vec::new(),
        fan_in: Vec::new(),
        not_before_ms: task_opts::not_before(&args.queue)?,
    };
    Ok((spec, c))
}

/// Whether a submit follows its task, and what Ctrl-C then does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Print the id and return.
    No,
    /// Follow the task to its end.
    UntilDone(OnInterrupt),
}

/// What the first Ctrl-C does while following a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnInterrupt {
    /// Stop following; the task keeps running (`submit --wait`).
    LeaveRunning,
    /// Cancel the task, like `srun` (`fabric run`); a second Ctrl-C leaves
    /// at once.
    Cancel,
}

/// Queues `spec`; with [`Follow::No`] prints its id, else follows the task
/// to its end (a spinner with its state on a terminal; its output as it
/// comes) and returns the contract's exit code, with the finished task.
/// Ctrl-C does what the [`OnInterrupt`] says, and exits 130.
pub(crate) async fn queue(
    client: &fabric_client::Client,
    spec: TaskSpec,
    output: Output,
    quiet: bool,
    follow: Follow,
) -> anyhow::Result<(i32, Option<fabric_proto::TaskInfo>)> {
    let Follow::UntilDone(on_interrupt) = follow else {
        let queued = client.enqueue(spec).await?;
        if let Some(w) = &queued.warning {
            output::warning(&format!("task {} may wait long: {w}", queued.id));
        }
        output.submitted(&queued.id);
        return Ok((0, None));
    };
    let report = Reporter::new(output, quiet);
    let queued = std::sync::Mutex::new(None);
    let waited = client.submit_and_wait(
        spec,
        |q| {
            *queued
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(q.id);
            report.waiting(q);
        },
        report.event_sink(),
    );
    tokio::select! {
        info = waited => match info {
            Ok(info) => Ok((report.task(&info), Some(info))),
            Err(e) => {
                report.clear();
                let id = *queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match id {
                    Some(id) => Err(super::wait::lost_while_waiting(id, e)),
                    None => Err(e.into()),
                }
            }
        },
        () = super::wait::show_state(client, &report, || {
            *queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }) => unreachable!("shows until the wait ends"),
        _ = tokio::signal::ctrl_c() => {
            report.clear();
            let id = *queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match (id, on_interrupt) {
                (Some(id), OnInterrupt::Cancel) => interrupted_cancel(client, id).await,
                (Some(id), OnInterrupt::LeaveRunning) => output::note(&format!(
                    "task {id} {}",
                    super::wait::keeps_running(id)
                )),
                // The submit may have reached the dispatcher all the same.
                (None, _) => output::note(
                    "interrupted while submitting: the task may have been queued (fabric tasks shows it)",
                ),
            }
            Ok((130, None))
        }
    }
}

/// The first Ctrl-C of `fabric run`: cancels the task, unless a second
/// Ctrl-C comes first (then it keeps running, and the hint says so).
async fn interrupted_cancel(client: &fabric_client::Client, id: fabric_proto::TaskId) {
    output::note(&format!(
        "cancelling task {id} (Ctrl-C again to leave it running)"
    ));
    tokio::select! {
        cancelled = client.cancel(id) => match cancelled {
            Ok(_) => output::note(&format!("task {id} cancelled")),
            Err(e) => output::note(&format!(
                "could not cancel task {id}: {e}; it {}",
                super::wait::keeps_running(id)
            )),
        },
        _ = tokio::signal::ctrl_c() => output::note(&format!(
            "task {id} {}",
            super::wait::keeps_running(id)
        )),
    }
}
