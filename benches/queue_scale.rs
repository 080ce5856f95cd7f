//! Queue scale: a dispatcher with no workers takes `FABRIC_BENCH_QUEUE`
//! tasks (default 100,000); its memory is read with them all queued, then a
//! fresh process restarts on the same store and the time until it serves
//! again is measured, beside the time to start on an empty store.
//!
//! Each phase runs in its own child process (this binary, re-executed), so
//! memory figures are that process's own and the store's lock is free for
//! the restart. Targets (DESIGN.md): RSS under 200 MB with 100,000 queued,
//! under 500 MB with 1,000,000; restart and resume in under 5 s. A restart must have reloaded every
//! queued task: the count its scheduler holds is printed, and the bench
//! fails when it is not the number queued (a restart that reloaded nothing
//! would be fast for the wrong reason).
//!
//! A second phase queues `FABRIC_BENCH_INPUT_TASKS` tasks (default 1,000)
//! with `FABRIC_BENCH_INPUT_MIB` MiB of random input each (default 8, so
//! they do not dedupe), then restarts on that store: the inputs live in the
//! store as chunked blobs, so neither figure grows with them (issue 9, item
//! 5; the same targets).

#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_benches::trivial_wasm;
use fabric_client::Client;
use fabric_dispatcher::{Dispatcher, DispatcherConfig};
use fabric_net::Identity;
use fabric_proto::TaskSpec;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Submits in one request (one store transaction and one flush each).
const FILL_BATCH: u64 = 1_000;

async fn start(dir: &Path) -> (Dispatcher, Duration) {
    let t = Instant::now();
    let mut cfg = DispatcherConfig::new(dir.to_owned(), "127.0.0.1:0".parse().expect("addr"));
    // The queue's cap follows the bench's size (the default is 100,000).
    cfg.caps.max_queued = cfg.caps.max_queued.max(queue_size() as usize);
    let d = Dispatcher::start(cfg).await.expect("dispatcher starts");
    (d, t.elapsed())
}

/// Child: fill the queue, report memory.
fn fill(dir: &Path, n: u64) {
    runtime().block_on(async {
        let (d, _) = start(dir).await;
        let me = Identity::generate().expect("identity");
        d.add_client(&me.public(), "bench").await.expect("client");
        let c = Arc::new(
            Client::connect(&me, d.public_key(), d.local_addr())
                .await
                .expect("connect"),
        );
        let module = c.upload_module(&trivial_wasm()).await.expect("upload");
        let base = rss_mb();
        let sem = Arc::new(tokio::sync::Semaphore::new(4));
        let t = Instant::now();
        let mut handles = Vec::new();
        let mut left = n;
        while left > 0 {
            let batch = left.min(FILL_BATCH);
            left -= batch;
            let permit = sem.clone().acquire_owned().await.expect("permit");
            let c = c.clone();
            handles.push(tokio::spawn(async move {
                let specs = (0..batch).map(|_| TaskSpec::wasm(module)).collect();
                c.submit_many(specs).await.expect("submit many");
                drop(permit);
            }));
        }
        for h in handles {
            h.await.expect("submit task");
        }
        let took = t.elapsed();
        println!(
            "fill {n} {:.1} {:.1} {:.2}",
            base,
            rss_mb(),
            took.as_secs_f64()
        );
        d.shutdown().await;
    });
}

/// `len` bytes no other task's input shares (splitmix64 of `seed`).
fn random_input(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Child: queue `n` tasks with `mib` MiB of input each, report memory.
fn fill_inputs(dir: &Path, n: u64, mib: usize) {
    runtime().block_on(async {
        let (d, _) = start(dir).await;
        let me = Identity::load_or_create(&dir.join("bench-client.key")).expect("identity");
        d.add_client(&me.public(), "bench").await.expect("client");
        let c = Arc::new(
            Client::connect(&me, d.public_key(), d.local_addr())
                .await
                .expect("connect"),
        );
        let module = c.upload_module(&trivial_wasm()).await.expect("upload");
        let base = rss_mb();
        // A few uploads in flight: the client's own buffers stay small.
        let sem = Arc::new(tokio::sync::Semaphore::new(4));
        let t = Instant::now();
        let mut handles = Vec::new();
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.expect("permit");
            let c = c.clone();
            handles.push(tokio::spawn(async move {
                let mut spec = TaskSpec::wasm(module);
                spec.input = random_input(i, mib << 20);
                c.submit(spec).await.expect("submit");
                drop(permit);
            }));
        }
        for h in handles {
            h.await.expect("submit task");
        }
        let took = t.elapsed();
        println!(
            "fill {n} {:.1} {:.1} {:.2}",
            base,
            rss_mb(),
            took.as_secs_f64()
        );
        d.shutdown().await;
    });
}

/// Child: restart on the store, report time to serve, memory and how many
/// queued tasks the restarted scheduler holds.
fn restart(dir: &Path) {
    runtime().block_on(async {
        let (d, took) = start(dir).await;
        let me = Identity::load_or_create(&dir.join("bench-client.key")).expect("identity");
        d.add_client(&me.public(), "bench").await.expect("client");
        let c = Client::connect(&me, d.public_key(), d.local_addr())
            .await
            .expect("connect");
        let queued = c.counts().await.expect("counts").queued;
        println!("restart {:.3} {:.1} {queued}", took.as_secs_f64(), rss_mb());
        d.shutdown().await;
    });
}

fn child(args: &[&str]) -> String {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args(args)
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The queued count a `restart` child reported; fails the bench unless it
/// is `expected`.
fn reloaded(restart_line: &str, expected: u64) -> u64 {
    let got = restart_line
        .split_whitespace()
        .nth(3)
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(
        got,
        Some(expected),
        "the restart reloaded {got:?} queued tasks, not {expected}: {restart_line:?}"
    );
    expected
}

fn field(line: &str, i: usize) -> f64 {
    line.split_whitespace()
        .nth(i)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fill") => return fill(Path::new(&args[2]), args[3].parse().expect("count")),
        Some("restart") => return restart(Path::new(&args[2])),
        Some("fill-inputs") => {
            let (n, mib) = (
                args[3].parse().expect("count"),
                args[4].parse().expect("MiB"),
            );
            return fill_inputs(Path::new(&args[2]), n, mib);
        }
        _ => {}
    }
    let n = queue_size();
    let empty = tempfile::tempdir().expect("temp dir");
    let full = tempfile::tempdir().expect("temp dir");
    let baseline = child(&["restart", &empty.path().to_string_lossy()]);
    let filled = child(&["fill", &full.path().to_string_lossy(), &n.to_string()]);
    let restarted = child(&["restart", &full.path().to_string_lossy()]);
    let (fl, bl, rl) = (filled.trim(), baseline.trim(), restarted.trim());
    reloaded(bl, 0);
    let back = reloaded(rl, n);
    println!("queue_scale summary ({n} tasks queued, no workers)");
    println!(
        "  fill: {:.0} submits/s; RSS {:.0} MB before, {:.0} MB with all queued (dispatcher and client in one process)",
        n as f64 / field(fl, 4),
        field(fl, 2),
        field(fl, 3)
    );
    println!(
        "  start on an empty store:   {:>7.3} s  (RSS {:.0} MB)",
        field(bl, 1),
        field(bl, 2)
    );
    println!(
        "  restart with {n} queued: {:>7.3} s  (RSS {:.0} MB; targets < 5 s, < {} MB); reloaded {back} queued (checked)",
        field(rl, 1),
        field(rl, 2),
        rss_target_mb(n)
    );
    println!(
        "  ratio restart / empty start: {:.1}x",
        field(rl, 1) / field(bl, 1).max(1e-6)
    );
    inputs_phase(field(bl, 1));
}

/// DESIGN.md's RSS target for a restart with `n` queued: 200 MB up to
/// 100,000, 500 MB for a million.
fn rss_target_mb(n: u64) -> u64 {
    if n > 100_000 { 500 } else { 200 }
}

/// `FABRIC_BENCH_QUEUE`: tasks queued before the restart.
fn queue_size() -> u64 {
    env_or("FABRIC_BENCH_QUEUE", 100_000)
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Tasks with large inputs queued, then a restart on that store.
fn inputs_phase(empty_start: f64) {
    let n: u64 = env_or("FABRIC_BENCH_INPUT_TASKS", 1_000);
    let mib: usize = env_or("FABRIC_BENCH_INPUT_MIB", 8);
    if n == 0 {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().to_string_lossy();
    let filled = child(&["fill-inputs", &d, &n.to_string(), &mib.to_string()]);
    let restarted = child(&["restart", &d]);
    let (fl, rl) = (filled.trim(), restarted.trim());
    let back = reloaded(rl, n);
    println!("queue_scale inputs ({n} tasks queued with {mib} MiB of random input each)");
    println!(
        "  fill: {:.1} submits/s ({:.0} MB/s of input); RSS {:.0} MB before, {:.0} MB with all queued",
        n as f64 / field(fl, 4),
        (n as f64 * mib as f64 * 1.048_576) / field(fl, 4),
        field(fl, 2),
        field(fl, 3)
    );
    println!(
        "  restart with {n} queued:  {:>7.3} s  (dispatcher RSS {:.0} MB; targets < 5 s, < 200 MB); reloaded {back} queued (checked)",
        field(rl, 1),
        field(rl, 2)
    );
    println!(
        "  ratio restart / empty start: {:.1}x",
        field(rl, 1) / empty_start.max(1e-6)
    );
}
