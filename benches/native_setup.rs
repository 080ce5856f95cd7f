//! Sandbox set-up cost per native task: `true` run through the worker's
//! runner (helper process, cgroups, uid drop, namespaces, new root,
//! rlimits, landlock, seccomp) against `true` spawned directly, side by
//! side in the same process and interleaved: one of each in turn (which
//! goes first alternates), so a noisy stretch of the box weighs on both
//! alike. Target (DESIGN.md): under 10 ms on top of the direct run.
//!
//! This binary is its own helper: re-executed with the helper's hidden
//! argument, it runs `fabric_native::helper_main`, as `fabric` does.
//! Knob: `FABRIC_BENCH_NATIVE_RUNS` (default 100). Bounded in count.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use fabric_native::{AllowList, HELPER_COMMAND, NativeRunner, NativeTask, RunnerConfig};
use fabric_proto::{Limits, TaskStatus};

fn main() {
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|a| a == HELPER_COMMAND) {
        let spec = argv.next().unwrap_or_default();
        std::process::exit(fabric_native::helper_main(std::path::Path::new(&spec)));
    }
    let runs: u32 = std::env::var("FABRIC_BENCH_NATIVE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let allow = AllowList::resolve(&["true".into()], std::env::var("PATH").ok().as_deref())
        .expect("`true` on PATH");
    let program = allow.lookup("true").expect("allowed").to_path_buf();
    let work = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("own path");
    let runner = NativeRunner::new(RunnerConfig {
        helper: vec![exe.into_os_string(), HELPER_COMMAND.into()],
        work_root: work.path().join("native"),
        network: false,
        exec_in_work: false,
        max_disk_bytes: 1 << 30,
    })
    .expect("runner");
    println!("native sandbox set-up ({runs} runs of `true` each way, interleaved)");
    println!("  layers: {}", runner.layers().describe());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (direct, sandboxed) = rt.block_on(async {
        let mut direct = Vec::with_capacity(runs as usize);
        let mut sandboxed = Vec::with_capacity(runs as usize);
        for i in 0..runs {
            let pair = [i % 2 == 0, i % 2 != 0];
            for is_direct in pair {
                if is_direct {
                    direct.push(spawn_direct(&program).await);
                } else {
                    sandboxed.push(through_sandbox(&runner, &program, i).await);
                }
            }
        }
        (direct, sandboxed)
    });
    let (d50, d99) = percentiles(direct);
    let (s50, s99) = percentiles(sandboxed);
    println!(
        "  direct spawn:    p50 {:>8.2} ms   p99 {:>8.2} ms",
        ms(d50),
        ms(d99)
    );
    println!(
        "  through sandbox: p50 {:>8.2} ms   p99 {:>8.2} ms",
        ms(s50),
        ms(s99)
    );
    println!(
        "  set-up on top (p50): {:.2} ms  (target < 10 ms: {}); ratio sandbox / direct: {:.1}x",
        ms(s50.saturating_sub(d50)),
        if s50.saturating_sub(d50) < Duration::from_millis(10) {
            "met"
        } else {
            "NOT met"
        },
        s50.as_secs_f64() / d50.as_secs_f64().max(1e-9)
    );
}

/// `true` spawned directly; how long until it was reaped.
async fn spawn_direct(program: &std::path::Path) -> Duration {
    let t = Instant::now();
    let s = tokio::process::Command::new(program)
        .status()
        .await
        .expect("spawn true");
    assert!(s.success());
    t.elapsed()
}

/// `true` run through the worker's runner; how long until its outcome.
async fn through_sandbox(runner: &NativeRunner, program: &std::path::Path, i: u32) -> Duration {
    let task = NativeTask {
        name: format!("bench-{i}"),
        program: program.to_path_buf(),
        args: Vec::new(),
        env: Vec::new(),
        secrets: Vec::new(),
        stdin: Vec::new(),
        limits: Limits::default(),
        files: Vec::new(),
        outputs: Vec::new(),
    };
    let (_keep, cancel) = tokio::sync::oneshot::channel();
    let t = Instant::now();
    let outcome = runner.run(task, cancel, |_| {}).await;
    assert_eq!(outcome.status, TaskStatus::Succeeded, "{outcome:?}");
    t.elapsed()
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
