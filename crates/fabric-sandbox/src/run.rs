//! Running one task: WASI context, store limits, deadline, and the mapping
//! from however the run ended onto a [`TaskOutcome`].

use std::time::{Duration, Instant};

use fabric_proto::{GuestEvent, Limits, TaskOutcome, TaskStatus};
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::events::{EventBudget, GuestEvents};
use crate::limiter::{LimitExceeded, TaskLimiter};
use crate::output::CappedPipe;
use crate::runtime::{PreparedModule, WasmRuntime};

/// Where the scratch directory appears inside the guest.
pub const SCRATCH_GUEST_PATH: &str = "/work";

/// One run of a wasm module.
#[derive(Clone, Debug, Default)]
pub struct WasmTask {
    /// `argv[0]` as the guest sees it.
    pub program_name: String,
    /// `argv[1..]`.
    pub args: Vec<String>,
    /// The guest's whole environment; nothing is inherited.
    pub env: Vec<(String, String)>,
    /// Bytes on the guest's stdin.
    pub stdin: Vec<u8>,
    /// Fuel, memory, time and output limits.
    pub limits: Limits,
    /// Preopen an empty per-task directory as `/work`, removed afterwards.
    pub scratch_dir: bool,
}

/// Raised by the epoch callback once the wall-clock deadline has passed.
#[derive(Debug)]
struct DeadlineReached;

impl std::fmt::Display for DeadlineReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("wall-clock deadline reached")
    }
}

impl std::error::Error for DeadlineReached {}

/// The store's data for one task.
pub(crate) struct TaskState {
    pub(crate) wasi: WasiP1Ctx,
    limiter: TaskLimiter,
    deadline: Instant,
    pub(crate) events: GuestEvents,
}

/// Where a run stopped, to tell "refused before running" from "died running".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Instantiate,
    Run,
}

impl WasmRuntime {
    /// Runs `task` from `module` to completion and reports how it ended.
    /// `events` receives progress (coalesced: at most one per
    /// [`WasmRuntimeConfig::progress_interval`](crate::WasmRuntimeConfig),
    /// and the latest value at the end) and log lines (within the task's
    /// budget) as they happen; it is called on the thread running the guest,
    /// so it should not block.
    ///
    /// This never fails: every way a run can end is a [`TaskOutcome`].
    pub async fn run(
        &self,
        module: &PreparedModule,
        mut task: WasmTask,
        events: impl FnMut(GuestEvent) + Send + 'static,
    ) -> TaskOutcome {
        let limits = task.limits;
        if limits.memory_bytes > self.config.max_memory_bytes {
            return TaskOutcome::rejected(format!(
                "memory limit of {} bytes exceeds this runtime's maximum of {} bytes",
                limits.memory_bytes, self.config.max_memory_bytes
            ));
        }
        let Ok(_slot) = self.slots.acquire().await else {
            return TaskOutcome::rejected("wasm runtime is shutting down");
        };
        let started = Instant::now();
        let stdout = CappedPipe::new(clamp_usize(limits.output_bytes));
        let stderr = CappedPipe::new(clamp_usize(limits.output_bytes));
        let scratch = if task.scratch_dir {
            match tempfile::Builder::new().prefix("fabric-task-").tempdir() {
                Ok(dir) => Some(dir),
                Err(e) => return TaskOutcome::rejected(format!("cannot create scratch dir: {e}")),
            }
        } else {
            None
        };

        let wasi = match wasi_context(&mut task, &stdout, &stderr, scratch.as_ref()) {
            Ok(w) => w,
            Err(message) => return TaskOutcome::rejected(message),
        };

        let timeout = Duration::from_millis(limits.timeout_ms);
        let mut store = match self.new_store(wasi, &limits, started + timeout, Box::new(events)) {
            Ok(store) => store,
            Err(message) => return TaskOutcome::rejected(message),
        };

        // The outer timeout covers time spent blocked in host calls (a guest
        // sleeping in `poll_oneoff`), where epochs cannot interrupt it.
        let mut phase = Phase::Instantiate;
        let result = tokio::time::timeout(
            timeout + self.config.epoch_tick * 2,
            run_start(&mut store, module, &mut phase),
        )
        .await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let fuel_used = limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(limits.fuel));
        let peak_memory_bytes = store.data().limiter.peak_memory() as u64;
        store.data_mut().events.flush();
        drop(store);
        drop(scratch);

        let measured = Measured {
            duration_ms,
            fuel_used,
            peak_memory_bytes,
        };
        ended(result.ok(), phase, &limits, &stdout, &stderr, measured)
    }
}

impl WasmRuntime {
    /// A store for one task: its WASI view, memory and table ceilings,
    /// fuel, log budget, and a deadline checked on every epoch tick.
    fn new_store(
        &self,
        wasi: WasiP1Ctx,
        limits: &Limits,
        deadline: Instant,
        events: Box<dyn FnMut(GuestEvent) + Send>,
    ) -> Result<Store<TaskState>, String> {
        let state = TaskState {
            wasi,
            limiter: TaskLimiter::new(
                clamp_usize(limits.memory_bytes),
                self.config.max_table_elements,
            ),
            deadline,
            events: GuestEvents::new(
                EventBudget {
                    log_lines: self.config.max_log_lines,
                    log_bytes: clamp_usize(limits.output_bytes),
                    progress_interval: self.config.progress_interval,
                },
                events,
            ),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| format!("cannot set fuel: {e:#}"))?;
        // Check the deadline on every epoch tick, yielding to the executor in
        // between so other tasks and timers make progress.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Error::new(DeadlineReached))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }
}

/// What a run used.
struct Measured {
    duration_ms: u64,
    fuel_used: u64,
    peak_memory_bytes: u64,
}

/// The outcome of a run that ended with `result` (`None`: the outer
/// timeout fired) in `phase`.
fn ended(
    result: Option<wasmtime::Result<()>>,
    phase: Phase,
    limits: &Limits,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
    m: Measured,
) -> TaskOutcome {
    let (status, exit_code, message) = match result {
        None => (
            TaskStatus::TimedOut,
            None,
            Some(format!("timed out after {} ms", limits.timeout_ms)),
        ),
        Some(Ok(())) => (TaskStatus::Succeeded, Some(0), None),
        Some(Err(e)) => classify(&e, phase, limits),
    };
    let (stdout, stdout_truncated) = stdout.take();
    let (stderr, stderr_truncated) = stderr.take();
    TaskOutcome {
        status,
        exit_code,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        fuel_used: m.fuel_used,
        duration_ms: m.duration_ms,
        peak_memory_bytes: m.peak_memory_bytes,
        message,
        files: Vec::new(),
    }
}

/// The guest's WASI view: its arguments, its environment, stdin, the capped
/// output pipes and the scratch dir; nothing of the host's.
fn wasi_context(
    task: &mut WasmTask,
    stdout: &CappedPipe,
    stderr: &CappedPipe,
    scratch: Option<&tempfile::TempDir>,
) -> Result<WasiP1Ctx, String> {
    let mut wasi = WasiCtxBuilder::new();
    let program = if task.program_name.is_empty() {
        "task.wasm"
    } else {
        task.program_name.as_str()
    };
    wasi.arg(program)
        .args(&task.args)
        .envs(&task.env)
        .stdin(MemoryInputPipe::new(std::mem::take(&mut task.stdin)))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    if let Some(dir) = scratch {
        wasi.preopened_dir(dir.path(), SCRATCH_GUEST_PATH, FsPerms::ReadWrite)
            .map_err(|e| format!("cannot preopen scratch dir: {e:#}"))?;
    }
    Ok(wasi.build_p1())
}

async fn run_start(
    store: &mut Store<TaskState>,
    module: &PreparedModule,
    phase: &mut Phase,
) -> wasmtime::Result<()> {
    let instance = module.pre.instantiate_async(&mut *store).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    *phase = Phase::Run;
    start.call_async(&mut *store, ()).await
}

fn classify(
    e: &wasmtime::Error,
    phase: Phase,
    limits: &Limits,
) -> (TaskStatus, Option<i32>, Option<String>) {
    if let Some(I32Exit(code)) = e.downcast_ref::<I32Exit>() {
        let status = if *code == 0 {
            TaskStatus::Succeeded
        } else {
            TaskStatus::Failed
        };
        return (status, Some(*code), None);
    }
    if let Some(limit) = e.downcast_ref::<LimitExceeded>() {
        return (TaskStatus::MemoryExceeded, None, Some(limit.to_string()));
    }
    if e.is::<DeadlineReached>() {
        return (
            TaskStatus::TimedOut,
            None,
            Some(format!("timed out after {} ms", limits.timeout_ms)),
        );
    }
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => (
                TaskStatus::FuelExhausted,
                None,
                Some(format!("all {} units of fuel used", limits.fuel)),
            ),
            Trap::Interrupt => (
                TaskStatus::TimedOut,
                None,
                Some(format!("timed out after {} ms", limits.timeout_ms)),
            ),
            Trap::StackOverflow => (
                TaskStatus::Trapped,
                None,
                Some("wasm trap: stack overflow (call stack exhausted)".into()),
            ),
            other => (TaskStatus::Trapped, None, Some(other.to_string())),
        };
    }
    match phase {
        Phase::Instantiate => (
            TaskStatus::Rejected,
            None,
            Some(format!("cannot instantiate module: {e:#}")),
        ),
        Phase::Run => (TaskStatus::Trapped, None, Some(format!("{e:#}"))),
    }
}

fn clamp_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}
