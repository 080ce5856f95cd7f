//! Per-task latency of a wasm task: warm (module compiled and linked once,
//! pooling allocator: instantiate, run, collect) against two baselines:
//! "compile" (the same engine, compiling and linking the module for every
//! task: what a runtime without a compiled-module cache pays, the baseline
//! a user of wasmtime would compare with) and "fresh" (a new engine and
//! pooling allocator and a compilation for every task, as a new runtime
//! process per task would pay before its own start-up). Prints all three,
//! their ratios and DESIGN.md's targets met or not; then how far past its
//! timeout a guest that fights the timeout runs (a busy loop, floods of
//! progress and of empty log lines, a sleep inside a host call): the bound
//! the end-to-end tests used to assert, measured here instead. Criterion
//! then reports the details.
//!
//! Run: `cargo bench -p fabric-benches --bench wasm_task`

#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fabric_benches::{runtime, task, trivial_wasm};
use fabric_proto::TaskStatus;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime")
}

fn warm_once(
    tokio: &tokio::runtime::Runtime,
    runtime: &fabric_sandbox::WasmRuntime,
    module: &fabric_sandbox::PreparedModule,
) {
    let outcome = tokio.block_on(runtime.run(module, task(), |_| {}));
    assert_eq!(outcome.status, TaskStatus::Succeeded);
    black_box(outcome);
}

/// The module's bytes with a custom section carrying `n`: the same code,
/// a new digest, so the runtime's cache cannot serve it.
fn unique(wasm: &[u8], n: u64) -> Vec<u8> {
    let mut out = wasm.to_vec();
    // Custom section (id 0), 10 bytes: name "n" (length 1), then `n`.
    out.extend_from_slice(&[0, 10, 1, b'n']);
    out.extend_from_slice(&n.to_le_bytes());
    out
}

fn compile_once(
    tokio: &tokio::runtime::Runtime,
    runtime: &fabric_sandbox::WasmRuntime,
    wasm: &[u8],
    n: &mut u64,
) {
    *n += 1;
    let module = runtime.prepare(&unique(wasm, *n)).expect("prepare");
    warm_once(tokio, runtime, &module);
}

fn cold_once(tokio: &tokio::runtime::Runtime, wasm: &[u8]) {
    let runtime = runtime();
    let module = runtime.prepare(wasm).expect("prepare");
    warm_once(tokio, &runtime, &module);
}

/// Guests that only a timeout stops.
const STUBBORN: [(&str, &str); 4] = [
    (
        "busy loop",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#,
    ),
    (
        "progress flood",
        r#"(module
  (import "fabric" "progress" (func $p (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (call $p (local.get $i) (i64.const 0))
      (br $l))))"#,
    ),
    (
        "empty-log flood",
        r#"(module
  (import "fabric" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (call $log (i32.const 2) (i32.const 0) (i32.const 0)) (br $l))))"#,
    ),
    (
        "sleep in a host call",
        r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#,
    ),
];

/// How far past a 200 ms timeout each stubborn guest runs (wall time of
/// `run`, worst of `runs`), on the warm runtime.
fn overshoot(tokio: &tokio::runtime::Runtime, runtime: &fabric_sandbox::WasmRuntime, runs: u32) {
    const TIMEOUT_MS: u64 = 200;
    println!(
        "  past a {TIMEOUT_MS} ms timeout (worst of {runs} runs each; the tests used to assert < 1 s):"
    );
    for (name, wat) in STUBBORN {
        let module = runtime
            .prepare(&wat::parse_str(wat).expect("valid WAT"))
            .expect("prepare");
        let mut worst = Duration::ZERO;
        for _ in 0..runs {
            let mut t = task();
            t.limits.timeout_ms = TIMEOUT_MS;
            t.limits.fuel = u64::MAX / 2;
            let start = Instant::now();
            let o = tokio.block_on(runtime.run(&module, t, |_| {}));
            let past = start
                .elapsed()
                .saturating_sub(Duration::from_millis(TIMEOUT_MS));
            assert_eq!(o.status, TaskStatus::TimedOut, "{name}: {o:?}");
            worst = worst.max(past);
        }
        println!(
            "    {name:<22} {:>8.1} ms  ({})",
            worst.as_secs_f64() * 1e3,
            if worst < Duration::from_secs(1) {
                "< 1 s"
            } else {
                "NOT < 1 s"
            }
        );
    }
}

/// Mean time per call of `f` over `iters` calls, after a short warm-up.
fn mean(iters: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..iters.div_ceil(10) {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / iters
}

fn main() {
    let tokio = rt();
    let wasm = trivial_wasm();
    let runtime = runtime();
    let module = runtime.prepare(&wasm).expect("prepare");

    // Side-by-side summary first, in the same process.
    let warm = mean(20_000, || warm_once(&tokio, &runtime, &module));
    let mut n = 0;
    let compile = mean(100, || compile_once(&tokio, &runtime, &wasm, &mut n));
    let cold = mean(30, || cold_once(&tokio, &wasm));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!("wasm_task summary");
    println!(
        "  warm per task:    {:>10.1} µs  (cached module, pooling allocator)",
        us(warm)
    );
    println!(
        "  compile per task: {:>10.1} µs  (same engine, module compiled and linked every task)",
        us(compile)
    );
    println!(
        "  fresh per task:   {:>10.1} µs  (new engine + pooling allocator + compile every task)",
        us(cold)
    );
    println!(
        "  ratio compile/warm: {:.0}x; fresh/warm: {:.0}x",
        compile.as_secs_f64() / warm.as_secs_f64(),
        cold.as_secs_f64() / warm.as_secs_f64()
    );
    println!(
        "  target warm < 100 µs (DESIGN.md): {}; target >= 20x a fresh process per task: {} \
         (fresh engine, before process start-up: {:.0}x)",
        verdict(warm < Duration::from_micros(100)),
        verdict(cold >= warm * 20),
        cold.as_secs_f64() / warm.as_secs_f64()
    );

    overshoot(&tokio, &runtime, 5);

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("wasm_task");
    group.bench_function("warm", |b| b.iter(|| warm_once(&tokio, &runtime, &module)));
    group.bench_function("compile", |b| {
        b.iter(|| compile_once(&tokio, &runtime, &wasm, &mut n))
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("cold", |b| b.iter(|| cold_once(&tokio, &wasm)));
    group.finish();
    c.final_summary();
}
