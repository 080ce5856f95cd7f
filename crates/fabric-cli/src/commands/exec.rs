//! `fabric exec`: run a module locally exactly as a worker would.

use fabric_proto::{LimitCaps, TaskOutcome};
use fabric_sandbox::{SandboxError, WasmRuntime, WasmRuntimeConfig, WasmTask};

use super::{runtime, task_opts};
use crate::cli::ExecArgs;
use crate::config;
use crate::output::{Output, Reporter};

pub(crate) fn execute(args: ExecArgs) -> anyhow::Result<i32> {
    // A local run is not a cluster's: its fuel is the user's to spend.
    let mut caps = LimitCaps::default();
    caps.max.fuel = u64::MAX;
    let limits = task_opts::limits(&args.task, args.fuel, &caps)?;
    let env = task_opts::env(&args.task)?;
    let module_path = super::crate_build::module_path(&args.module, args.bin.as_deref())?;
    let wasm = task_opts::read_module(&module_path)?;
    // Like any filter: without --input, piped stdin is the task's input
    // (`seq 10 | fabric exec wc.wasm`); a terminal is not read.
    let stdin = if args.task.input.is_none() && !std::io::IsTerminal::is_terminal(&std::io::stdin())
    {
        task_opts::input_from_stdin(fabric_proto::DEFAULT_MAX_INPUT_BYTES)?
    } else {
        task_opts::input(&args.task, fabric_proto::DEFAULT_MAX_INPUT_BYTES)?
    };

    let sandbox = WasmRuntime::new(WasmRuntimeConfig {
        max_concurrent: 1,
        max_memory_bytes: caps.max.memory_bytes,
        cache_dir: if args.no_cache {
            None
        } else {
            config::data_dir(args.data_dir.clone()).map(|d| d.join("modules"))
        },
        ..WasmRuntimeConfig::default()
    })?;
    let report = Reporter::new(Output::new(args.json), args.quiet);
    let module = match sandbox.prepare(&wasm) {
        Ok(m) => m,
        // A module that cannot run is the task's fault, reported like any
        // other outcome (exit 2), not a failure of fabric.
        Err(
            e @ (SandboxError::InvalidModule(_)
            | SandboxError::Link(_)
            | SandboxError::NoEntryPoint),
        ) => {
            let outcome = TaskOutcome::rejected(format!("{}: {e}", module_path.display()));
            report.outcome(&outcome, None);
            return Ok(outcome.cli_exit_code());
        }
        Err(e) => return Err(e.into()),
    };
    let task = WasmTask {
        program_name: module_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        args: args.args,
        env,
        stdin,
        limits,
        scratch_dir: args.scratch,
    };
    let events = report.event_sink();
    let outcome = runtime::current_thread()?.block_on(sandbox.run(&module, task, events));
    report.outcome(&outcome, Some(module.sha256()));
    Ok(outcome.cli_exit_code())
}
