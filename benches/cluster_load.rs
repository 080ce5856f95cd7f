//! Load generator: end-to-end throughput and latency of trivial tasks on a
//! dispatcher with 2 local workers (loopback QUIC, sled on disk, every
//! result flushed before it is acknowledged), beside the in-process
//! `fabric exec` rate (same sandbox, no cluster) as the ceiling.
//!
//! `cargo bench -p fabric-benches --bench cluster_load`. Knobs (env):
//! `FABRIC_BENCH_TASKS` (default 20000), `FABRIC_BENCH_INFLIGHT` (512),
//! `FABRIC_BENCH_SECONDS` for the half-rate latency run (5), `FABRIC_BENCH_RATE` to run
//! that phase at a fixed rate instead of half the measured one,
//! `FABRIC_BENCH_WORKERS` (2), `FABRIC_BENCH_LINGER_US` the group commit's linger (0),
//! `FABRIC_BENCH_THREADS` tokio worker threads (4, as `fabric` uses on a
//! 2-core box: store calls block briefly, so a few spare threads pay). Every phase is
//! bounded in count and in time.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_benches::{
    closed_loop, env_u64, one, percentile, runtime, start_cluster, task, trivial_wasm,
};
use fabric_client::Client;
use fabric_proto::{Sha256, TaskStatus};

const PHASE_LIMIT: Duration = Duration::from_secs(180);

/// The ceiling: the same trivial task run in-process, one after another.
fn exec_ceiling(n: u32) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let runtime = runtime();
    let module = runtime.prepare(&trivial_wasm()).expect("prepare");
    let start = Instant::now();
    for _ in 0..n {
        let o = rt.block_on(runtime.run(&module, task(), |_| {}));
        assert_eq!(o.status, TaskStatus::Succeeded);
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

async fn open_loop(
    clients: &[Arc<Client>],
    module: Sha256,
    rate: f64,
    seconds: u64,
) -> Vec<Duration> {
    let n = (rate * seconds as f64) as u64;
    let gap = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        tokio::time::sleep_until(start + gap * i as u32).await;
        let c = clients[i as usize % clients.len()].clone();
        handles.push(tokio::spawn(async move { one(&c, module).await }));
    }
    let mut lat = Vec::with_capacity(n as usize);
    for h in handles {
        lat.push(h.await.expect("task"));
    }
    lat
}

fn main() {
    let tasks = env_u64("FABRIC_BENCH_TASKS", 20_000);
    let inflight = env_u64("FABRIC_BENCH_INFLIGHT", 512);
    let seconds = env_u64("FABRIC_BENCH_SECONDS", 5);
    let ceiling = exec_ceiling(20_000);

    let threads = env_u64("FABRIC_BENCH_THREADS", 4) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let workers = env_u64("FABRIC_BENCH_WORKERS", 2);
        let (d, clients) = start_cluster(dir.path(), workers, None).await;
        let module = clients[0].upload_module(&trivial_wasm()).await.expect("upload");
        // Warm-up: compile the module on both workers, fill caches.
        tokio::time::timeout(PHASE_LIMIT, closed_loop(&clients, module, 500, 64)).await.expect("warm-up in time");

        let (took, mut lat) = tokio::time::timeout(PHASE_LIMIT, closed_loop(&clients, module, tasks, inflight))
            .await
            .expect("throughput phase in time");
        lat.sort();
        let rate = tasks as f64 / took.as_secs_f64();

        let half = match env_u64("FABRIC_BENCH_RATE", 0) {
            0 => (rate / 2.0).max(1.0),
            fixed => fixed as f64,
        };
        let mut lat_half = tokio::time::timeout(PHASE_LIMIT, open_loop(&clients, module, half, seconds))
            .await
            .expect("latency phase in time");
        lat_half.sort();

        println!("cluster_load summary (dispatcher + 2 workers, loopback QUIC, sled, 2-core box)");
        println!("  in-process exec ceiling:    {ceiling:>9.0} tasks/s  (same sandbox, no cluster)");
        println!(
            "  end to end, closed loop:    {rate:>9.0} tasks/s  ({tasks} tasks, {inflight} in flight, {:.2} s)",
            took.as_secs_f64()
        );
        println!(
            "    submit-to-recorded:       p50 {:>7.2} ms   p99 {:>7.2} ms",
            percentile(&lat, 0.50).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        );
        println!(
            "  at half that rate ({half:.0}/s, open loop, {seconds} s, {} tasks):",
            lat_half.len()
        );
        println!(
            "    submit-to-recorded:       p50 {:>7.2} ms   p99 {:>7.2} ms   (target p99 < 10 ms)",
            percentile(&lat_half, 0.50).as_secs_f64() * 1e3,
            percentile(&lat_half, 0.99).as_secs_f64() * 1e3
        );
        println!("  ratio end-to-end / ceiling: {:.3}  (target: >= 5000 tasks/s end to end)", rate / ceiling);
        for c in &clients {
            c.close().await;
        }
        d.shutdown().await;
    });
}
