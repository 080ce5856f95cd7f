//! Shared fixtures for Fabric's benches.

use std::sync::Arc;

/// The allocator `fabric` itself uses, so the benches that use this crate
/// (all but `native_setup`) measure the same.
#[global_allocator]
static ALLOCATOR: fabric_alloc::Fabric = fabric_alloc::Fabric;
use std::time::{Duration, Instant};

use fabric_client::Client;
use fabric_dispatcher::{Dispatcher, DispatcherConfig};
use fabric_net::Identity;
use fabric_net::mdns::Interfaces;
use fabric_proto::{Limits, Sha256, TaskSpec, TaskStatus};
use fabric_sandbox::{WasmRuntime, WasmRuntimeConfig, WasmTask};
use fabric_worker::WorkerConfig;

/// The smallest useful task: a WASI command whose `_start` does a little
/// arithmetic and returns.
pub const TRIVIAL_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "_start")
    (global.set $g (i32.add (global.get $g) (i32.const 1)))))"#;

/// The trivial module's bytes.
pub fn trivial_wasm() -> Vec<u8> {
    wat::parse_str(TRIVIAL_WAT).expect("valid WAT")
}

/// A runtime as a worker would configure it (pooling, no disk cache).
pub fn runtime() -> WasmRuntime {
    WasmRuntime::new(WasmRuntimeConfig::default()).expect("runtime")
}

/// A task with default limits and no input.
pub fn task() -> WasmTask {
    WasmTask {
        program_name: "trivial.wasm".into(),
        limits: Limits::default(),
        ..WasmTask::default()
    }
}

/// A knob from the environment.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The trivial task (16 MiB memory limit).
pub fn spec(module: Sha256) -> TaskSpec {
    let mut spec = TaskSpec::wasm(module);
    spec.limits.memory_bytes = 16 << 20;
    spec
}

/// The `p` quantile of sorted latencies.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Slots of each in-process worker `start_cluster` starts.
pub const SLOTS: u32 = 8;

/// A dispatcher (its REST API is started apart, with `fabric_api::start`)
/// and `workers` in-process workers (`SLOTS` slots each) in `dir`, and four QUIC clients, once
/// every worker registered.
pub async fn start_cluster(dir: &std::path::Path, workers: u64) -> (Dispatcher, Vec<Arc<Client>>) {
    // `FABRIC_BENCH_DISPATCHERS=3`: a group of three on Raft (issue 26).
    let group = env_u64("FABRIC_BENCH_DISPATCHERS", 1).max(1) as usize;
    let members: Vec<(std::net::SocketAddr, Identity)> = (0..group)
        .map(|i| {
            let port = std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .expect("a free port")
                .port();
            let key = Identity::load_or_create(&dir.join(format!("d{i}")).join("node.key"))
                .expect("node key");
            (std::net::SocketAddr::from(([127, 0, 0, 1], port)), key)
        })
        .collect();
    let mut started = Vec::new();
    for i in 0..group {
        let listen = if group == 1 {
            "127.0.0.1:0".parse().expect("addr")
        } else {
            members[i].0
        };
        let mut cfg = DispatcherConfig::new(dir.join(format!("d{i}")), listen);
        cfg.sched.heartbeat_ms = 1_000;
        cfg.commit_linger = Duration::from_micros(env_u64("FABRIC_BENCH_LINGER_US", 0));
        if group > 1 {
            cfg.cluster = Some(fabric_dispatcher::ClusterConfig {
                peers: members
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, (addr, id))| fabric_dispatcher::GroupMember {
                        addr: addr.to_string(),
                        key: id.public().to_bytes(),
                        api_url: None,
                    })
                    .collect(),
                advertise: None,
                api_url: None,
                joining: false,
                raft: fabric_dispatcher::RaftConfig::default(),
            });
        }
        started.push(tokio::spawn(Dispatcher::start(cfg)));
    }
    let mut ds = Vec::new();
    for s in started {
        ds.push(s.await.expect("start task").expect("dispatcher"));
    }
    let d = ds.swap_remove(0);
    // The others serve until the process ends (a bench exits after it).
    std::mem::forget(ds);
    let token = d.create_join_token().await.expect("token");
    let me = Identity::generate().expect("identity");
    d.add_client(&me.public(), "bench").await.expect("client");
    let peers: Vec<_> = members
        .iter()
        .skip(1)
        .map(|(a, id)| (*a, id.public()))
        .collect();
    for i in 0..workers {
        let cfg = WorkerConfig {
            peers: peers.clone(),
            dispatcher: Some(d.local_addr()),
            join_secret: Some(token.secret),
            name: format!("w{i}"),
            slots: SLOTS,
            memory_bytes: 8 << 30,
            mdns: Interfaces::Loopback,
            drain_timeout: Duration::from_secs(5),
            max_reconnects: Some(0),
            ..WorkerConfig::new(dir.join(format!("w{i}")), d.public_key())
        };
        tokio::spawn(fabric_worker::run(cfg, std::future::pending()));
    }
    let mut clients = Vec::new();
    for _ in 0..4 {
        let c = if group == 1 {
            Client::connect(&me, d.public_key(), d.local_addr()).await
        } else {
            let all = members
                .iter()
                .map(|(a, id)| (id.public(), a.to_string()))
                .collect();
            Client::connect_group(&me, all, &fabric_net::NetConfig::for_clients()).await
        };
        clients.push(Arc::new(c.expect("connect")));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while (clients[0].workers().await.expect("workers").len() as u64) < workers {
        assert!(Instant::now() < deadline, "workers did not register");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (d, clients)
}

/// One trivial task submitted and waited for; how long it took.
pub async fn one(client: &Client, module: Sha256) -> Duration {
    let start = Instant::now();
    let info = client
        .submit_and_wait(spec(module), |_| {}, |_| {})
        .await
        .expect("submit and wait");
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    start.elapsed()
}

/// `n` tasks with `inflight` at once over `clients`; the time it took and
/// each task's latency, in submission order.
pub async fn closed_loop(
    clients: &[Arc<Client>],
    module: Sha256,
    n: u64,
    inflight: u64,
) -> (Duration, Vec<Duration>) {
    let sem = Arc::new(tokio::sync::Semaphore::new(inflight as usize));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("semaphore");
        let c = clients[i as usize % clients.len()].clone();
        handles.push(tokio::spawn(async move {
            let d = one(&c, module).await;
            drop(permit);
            d
        }));
    }
    let mut lat = Vec::with_capacity(n as usize);
    for h in handles {
        lat.push(h.await.expect("task"));
    }
    (start.elapsed(), lat)
}
