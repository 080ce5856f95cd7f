//! Load generator: submit-to-recorded of trivial tasks through the REST
//! API (`POST /api/v1/tasks`, then the task's event stream until its `end`)
//! beside the same through QUIC (`submit` + wait on one stream), on the
//! same in-process cluster (dispatcher + 2 workers, sled on disk), at the
//! same concurrency, phases interleaved.
//!
//! `cargo bench -p fabric-benches --bench rest_load`. Knobs (env):
//! `FABRIC_BENCH_TASKS` per phase (default 2000), `FABRIC_BENCH_INFLIGHT`
//! concurrent submitters (32), `FABRIC_BENCH_ROUNDS` (2). Every phase is
//! bounded in count and in time.

#![allow(clippy::print_stdout)]

use std::io::{BufRead as _, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fabric_api::{ApiConfig, RateLimit};
use fabric_benches::{closed_loop, env_u64, percentile, start_cluster, trivial_wasm};
use fabric_client::Client;
use fabric_proto::{ApiRole, Sha256};

const PHASE_LIMIT: Duration = Duration::from_secs(180);

/// One task through REST: create, then follow its events to the end.
fn rest_one(agent: &ureq::Agent, url: &str, auth: &str, body: &str) -> Duration {
    let start = Instant::now();
    let created: serde_json::Value = agent
        .post(&format!("{url}/api/v1/tasks"))
        .set("Authorization", auth)
        .set("Content-Type", "application/json")
        .send_string(body)
        .expect("create")
        .into_json()
        .expect("json");
    let id = created["id"].as_str().expect("id");
    let resp = agent
        .get(&format!("{url}/api/v1/tasks/{id}/events"))
        .set("Authorization", auth)
        .call()
        .expect("events");
    let mut end = false;
    for line in BufReader::new(resp.into_reader()).lines() {
        let line = line.expect("line");
        if line == "event: end" {
            end = true;
        } else if end && line.starts_with("data: ") {
            assert!(line.contains("\"status\":\"succeeded\""), "{line}");
            break;
        }
    }
    assert!(end, "the stream ended without an end event");
    start.elapsed()
}

/// `n` tasks through REST from `inflight` threads; elapsed and latencies.
fn rest_phase(
    url: &str,
    token: &str,
    module: Sha256,
    n: u64,
    inflight: u64,
) -> (Duration, Vec<Duration>) {
    let body = serde_json::json!({"module": module.to_hex(), "limits": {"memory_bytes": 16 << 20}})
        .to_string();
    let auth = format!("Bearer {token}");
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..inflight)
        .map(|_| {
            let (url, auth, body, next) =
                (url.to_owned(), auth.clone(), body.clone(), next.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(60))
                    .build();
                let mut lat = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < n && start.elapsed() < PHASE_LIMIT {
                    lat.push(rest_one(&agent, &url, &auth, &body));
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    let took = start.elapsed();
    lat.sort();
    (took, lat)
}

/// `n` tasks through QUIC with `inflight` at once; elapsed and sorted
/// latencies.
async fn quic_phase(
    clients: &[Arc<Client>],
    module: Sha256,
    n: u64,
    inflight: u64,
) -> (Duration, Vec<Duration>) {
    let (took, mut lat) = closed_loop(clients, module, n, inflight).await;
    lat.sort();
    (took, lat)
}

fn line(what: &str, n: u64, took: Duration, lat: &[Duration]) -> f64 {
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "  {what:<6} {rate:>7.0} tasks/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        percentile(lat, 0.50).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3
    );
    rate
}

fn main() {
    let tasks = env_u64("FABRIC_BENCH_TASKS", 2_000);
    let inflight = env_u64("FABRIC_BENCH_INFLIGHT", 32);
    let rounds = env_u64("FABRIC_BENCH_ROUNDS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let api = ApiConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        // The bench is one token; it must not be what limits the rate.
        rate_limit: RateLimit {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        // Nor may its share of requests in flight.
        max_requests_per_token: u32::MAX,
        ..ApiConfig::default()
    };
    let (d, clients) = rt.block_on(start_cluster(dir.path(), 2));
    let addr = rt
        .block_on(fabric_api::start(d.front(), &api))
        .expect("REST is served");
    let url = format!("http://{addr}");
    let token = rt
        .block_on(d.create_api_token(ApiRole::Submit, None))
        .expect("token");
    let module = rt
        .block_on(clients[0].upload_module(&trivial_wasm()))
        .expect("upload");
    // Warm-up: compile the module on both workers, open the pools.
    rt.block_on(quic_phase(&clients, module, 200, inflight));
    rest_phase(&url, &token, module, 200, inflight);

    println!(
        "rest_load (dispatcher + 2 workers in-process, sled, {inflight} in flight, {tasks} tasks a phase)"
    );
    let (mut quic_rates, mut rest_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        println!(" round {round}");
        let (took, lat) = rt.block_on(quic_phase(&clients, module, tasks, inflight));
        quic_rates.push(line("QUIC", tasks, took, &lat));
        let (took, lat) = rest_phase(&url, &token, module, tasks, inflight);
        rest_rates.push(line("REST", lat.len() as u64, took, &lat));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "  ratio REST / QUIC throughput: {:.2}",
        mean(&rest_rates) / mean(&quic_rates)
    );
    rt.block_on(async {
        for c in &clients {
            c.close().await;
        }
        d.shutdown().await;
    });
}
