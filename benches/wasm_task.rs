//! Per-task latency of a wasm task: warm (module compiled and linked once,
//! pooling allocator: instantiate, run, collect) against two baselines:
//! "compile" (the same engine, compiling and linking the module for every
//! task: what a runtime without a compiled-module cache pays, the baseline
//! a user of wasmtime would compare with) and "fresh" (a new engine and
//! pooling allocator and a compilation for every task, as a new runtime
//! process per task would pay before its own start-up). Prints all three,
//! their ratios and DESIGN.md's targets met or not; criterion then reports
//! the details.
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
