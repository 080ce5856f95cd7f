//! `fabric exec`: run a module locally exactly as a worker would.

use std::path::PathBuf;

use fabric_proto::{LimitCaps, TaskOutcome};
use fabric_sandbox::{SandboxError, WasmRuntime, WasmRuntimeConfig, WasmTask};

use super::task_opts;
use crate::cli::ExecArgs;
use crate::output::Report;
use crate::usage;

/// Largest module `exec` will read, to fail fast on a wrong path.
const MAX_MODULE_BYTES: u64 = 256 << 20;

pub(crate) fn execute(args: ExecArgs) -> anyhow::Result<i32> {
    let caps = LimitCaps::default();
    let limits = task_opts::limits(&args.task, &caps)?;
    let env = task_opts::env(&args.task)?;
    let wasm = read_module(&args.module)?;
    let stdin = task_opts::input(&args.task)?;

    let config = WasmRuntimeConfig {
        max_concurrent: 1,
        max_memory_bytes: caps.max.memory_bytes,
        cache_dir: if args.no_cache {
            None
        } else {
            data_dir(args.data_dir.clone()).map(|d| d.join("modules"))
        },
        ..WasmRuntimeConfig::default()
    };
    let runtime = WasmRuntime::new(config)?;
    let report = Report::new(args.json, args.quiet);
    let module = match runtime.prepare(&wasm) {
        Ok(m) => m,
        Err(
            e @ (SandboxError::InvalidModule(_)
            | SandboxError::Link(_)
            | SandboxError::NoEntryPoint),
        ) => {
            let outcome = TaskOutcome::rejected(format!("{}: {e}", args.module.display()));
            report.outcome(&outcome, None);
            return Ok(outcome.cli_exit_code());
        }
        Err(e) => return Err(e.into()),
    };
    let task = WasmTask {
        program_name: args
            .module
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        args: args.args,
        env,
        stdin,
        limits,
        scratch_dir: args.scratch,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let events = report.event_sink();
    let outcome = rt.block_on(runtime.run(&module, task, events));
    report.outcome(&outcome, Some(module.sha256()));
    Ok(outcome.cli_exit_code())
}

pub(crate) fn read_module(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| usage(format!("cannot read module {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(usage(format!("module {} is not a file", path.display())));
    }
    if meta.len() > MAX_MODULE_BYTES {
        return Err(usage(format!(
            "module {} is {} bytes, over the {MAX_MODULE_BYTES}-byte limit",
            path.display(),
            meta.len()
        )));
    }
    std::fs::read(path).map_err(|e| usage(format!("cannot read module {}: {e}", path.display())))
}

/// `--data-dir`, else `$XDG_DATA_HOME/fabric`, else `~/.local/share/fabric`.
pub(crate) fn data_dir(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(|d| PathBuf::from(d).join("fabric"))
    })
    .or_else(|| {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".local/share/fabric"))
    })
}
