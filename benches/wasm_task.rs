//! Per-task latency of a wasm task: warm (module compiled and linked once,
//! pooling allocator: instantiate, run, collect) against cold (a fresh engine
//! and a compilation for every task, as a new runtime process per task would
//! pay). Prints both and their ratio; criterion then reports the details.
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
    let cold = mean(30, || cold_once(&tokio, &wasm));
    println!("wasm_task summary");
    println!(
        "  warm per task: {:>10.1} µs  (cached module, pooling allocator)",
        warm.as_secs_f64() * 1e6
    );
    println!(
        "  cold per task: {:>10.1} µs  (fresh engine + compile every task)",
        cold.as_secs_f64() * 1e6
    );
    println!(
        "  ratio cold/warm: {:.0}x  (target: >= 20x, warm < 100 µs)",
        cold.as_secs_f64() / warm.as_secs_f64()
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("wasm_task");
    group.bench_function("warm", |b| b.iter(|| warm_once(&tokio, &runtime, &module)));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("cold", |b| b.iter(|| cold_once(&tokio, &wasm)));
    group.finish();
    c.final_summary();
}
