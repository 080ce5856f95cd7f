//! Runtime tests on small WAT modules (the end-to-end suite covers the CLI).

use std::sync::{Arc, Mutex};

use fabric_proto::{GuestEvent, Limits, LogLevel, TaskStatus};

use crate::{WasmRuntime, WasmRuntimeConfig, WasmTask};

fn runtime() -> WasmRuntime {
    WasmRuntime::new(WasmRuntimeConfig {
        max_concurrent: 2,
        ..WasmRuntimeConfig::default()
    })
    .unwrap()
}

fn run(
    rt: &WasmRuntime,
    wat: &str,
    task: WasmTask,
) -> (fabric_proto::TaskOutcome, Vec<GuestEvent>) {
    let module = rt.prepare(&wat::parse_str(wat).unwrap()).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let outcome = tokio.block_on(rt.run(&module, task, move |e| sink.lock().unwrap().push(e)));
    let events = events.lock().unwrap().clone();
    (outcome, events)
}

const LOGGER: &str = r#"(module
  (import "fabric" "log" (func $log (param i32 i32 i32)))
  (import "fabric" "progress" (func $progress (param i64 i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello host")
  (func (export "_start")
    (call $progress (i64.const 3) (i64.const 10))
    (call $log (i32.const 2) (i32.const 16) (i32.const 10))))"#;

#[test]
fn guest_events_reach_the_sink() {
    let rt = runtime();
    let (outcome, events) = run(&rt, LOGGER, WasmTask::default());
    assert_eq!(outcome.status, TaskStatus::Succeeded);
    assert_eq!(
        events,
        vec![
            GuestEvent::Progress { done: 3, total: 10 },
            GuestEvent::Log {
                level: LogLevel::Info,
                message: "hello host".into()
            },
        ]
    );
}

#[test]
fn log_budget_cuts_a_flooding_guest() {
    let rt = runtime();
    let task = WasmTask {
        limits: Limits {
            output_bytes: 25,
            ..Limits::default()
        },
        ..WasmTask::default()
    };
    let wat = LOGGER.replace(
        "(call $log (i32.const 2) (i32.const 16) (i32.const 10))",
        "(call $log (i32.const 2) (i32.const 16) (i32.const 10))
         (call $log (i32.const 2) (i32.const 16) (i32.const 10))
         (call $log (i32.const 2) (i32.const 16) (i32.const 10))
         (call $log (i32.const 2) (i32.const 16) (i32.const 10))",
    );
    let (outcome, events) = run(&rt, &wat, task);
    assert_eq!(outcome.status, TaskStatus::Succeeded);
    let logs: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, GuestEvent::Log { .. }))
        .collect();
    // Two fit in 25 bytes, then one warning about the cut, then nothing.
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(matches!(
        logs[2],
        GuestEvent::Log {
            level: LogLevel::Warn,
            ..
        }
    ));
}

#[test]
fn log_pointer_outside_memory_traps() {
    let rt = runtime();
    let wat = LOGGER.replace(
        "(i32.const 16) (i32.const 10))))",
        "(i32.const 65530) (i32.const 100))))",
    );
    let (outcome, _) = run(&rt, &wat, WasmTask::default());
    assert_eq!(outcome.status, TaskStatus::Trapped);
    assert!(outcome.message.unwrap().contains("out of bounds"));
}

#[test]
fn prepared_modules_are_cached_by_digest() {
    let rt = runtime();
    let bytes = wat::parse_str(LOGGER).unwrap();
    let a = rt.prepare(&bytes).unwrap();
    assert!(rt.cached(&a.sha256()).is_some());
    let b = rt.prepare(&bytes).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a.pre, &b.pre));
}

#[test]
fn memory_limit_above_runtime_maximum_is_rejected() {
    let rt = WasmRuntime::new(WasmRuntimeConfig {
        max_concurrent: 1,
        max_memory_bytes: 1 << 20,
        ..WasmRuntimeConfig::default()
    })
    .unwrap();
    let task = WasmTask {
        limits: Limits {
            memory_bytes: 2 << 20,
            ..Limits::default()
        },
        ..WasmTask::default()
    };
    let (outcome, _) = run(&rt, LOGGER, task);
    assert_eq!(outcome.status, TaskStatus::Rejected);
}

/// Calls `fabric.progress` and `fabric.log` with an empty message forever.
const FLOODER: &str = r#"(module
  (import "fabric" "log" (func $log (param i32 i32 i32)))
  (import "fabric" "progress" (func $progress (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (call $progress (local.get $i) (i64.const 0))
      (call $log (i32.const 2) (i32.const 0) (i32.const 0))
      (br $l))))"#;

#[test]
fn a_flooding_guest_times_out_with_its_events_bounded() {
    let rt = WasmRuntime::new(WasmRuntimeConfig {
        max_concurrent: 1,
        max_log_lines: 50,
        progress_interval: std::time::Duration::from_millis(100),
        ..WasmRuntimeConfig::default()
    })
    .unwrap();
    let task = WasmTask {
        limits: Limits {
            timeout_ms: 500,
            fuel: u64::MAX / 2,
            ..Limits::default()
        },
        ..WasmTask::default()
    };
    // Fuel for far longer than the timeout: only the timeout ends it. The run happens on a thread
    // so that a flood that outlived its timeout fails the test instead of
    // hanging it (a hang guard; how soon it ends is the `wasm_task` bench's).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(&rt, FLOODER, task));
    });
    let (outcome, events) = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the flooding guest outlived its timeout");
    assert_eq!(outcome.status, TaskStatus::TimedOut, "{outcome:?}");
    let logs = events
        .iter()
        .filter(|e| matches!(e, GuestEvent::Log { .. }))
        .count();
    assert_eq!(logs, 51, "50 empty lines and the warning");
    let progress: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            GuestEvent::Progress { done, .. } => Some(*done),
            _ => None,
        })
        .collect();
    // Coalesced: at most one per 100 ms interval of the run (and the final
    // flush), however long the run took; the last one is the guest's
    // latest value, far past the few that were passed on.
    let intervals = outcome.duration_ms / 100 + 2;
    assert!(progress.len() >= 2, "{progress:?}");
    assert!(
        progress.len() as u64 <= intervals,
        "{progress:?} in {outcome:?}"
    );
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
}
