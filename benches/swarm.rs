//! Swarm: one process plays many workers against one dispatcher, to see
//! what each connected worker costs the dispatcher and where the first
//! limit is.
//!
//! The dispatcher runs in a child process (this binary, re-executed), so
//! its CPU time and memory are its own. This process holds every worker:
//! each has its own key and its own QUIC connection, registers as a real
//! worker does, heartbeats at the period the dispatcher asks for, and
//! serves assignment streams (the manifest's signature, expiry and replay
//! are checked as `fabric worker` checks them; nothing is executed, there is
//! no wasm runtime) by reporting success and waiting for the ack.
//!
//! For each size (`FABRIC_SWARM_SIZES`, default `100,300,1000`), on a
//! fresh dispatcher: the time for every worker to register; the
//! dispatcher's RSS per connected worker; its CPU while the swarm only
//! heartbeats (`FABRIC_SWARM_IDLE_SECS`, default 5), per heartbeat; and
//! `FABRIC_SWARM_TASKS` trivial tasks (default 20,000) placed with 512 in
//! flight: placement throughput and the dispatcher's CPU per task. Each
//! figure is printed beside its ratio to the smallest size, run in the
//! same invocation, with the workers the dispatcher dropped (declared
//! dead) and the results that were then not recorded: that is where a
//! limit shows. Every phase is bounded in time.
//!
//! `cargo bench -p fabric-benches --bench swarm`

#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "swarm/fleet.rs"]
mod fleet;

use fleet::{Counters, worker};

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fabric_benches::{closed_loop, env_u64, trivial_wasm};
use fabric_client::Client;
use fabric_dispatcher::{Dispatcher, DispatcherConfig};
use fabric_net::{Identity, PublicKey};

/// Slots each swarm worker offers.
const SLOTS: u32 = 4;
/// Tasks in flight in the placement phase (as `cluster_load`).
const INFLIGHT: u64 = 512;
/// Bound on each phase.
const PHASE_LIMIT: Duration = Duration::from_secs(300);
/// Linux reports process CPU time in ticks of 1/100 s (`USER_HZ`).
const TICKS_PER_SEC: f64 = 100.0;

/// The worker keys the child dispatcher trusts (32 raw bytes each).
const WORKER_KEYS: &str = "workers.keys";
/// The client key the child dispatcher trusts.
const CLIENT_KEY: &str = "client.key";

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Child: a dispatcher in `dir` that trusts the keys written there; prints
/// `ready ADDR KEY`, serves until its stdin closes.
fn dispatcher(dir: &Path) {
    runtime(4).block_on(async {
        let mut cfg = DispatcherConfig::new(dir.join("d"), "127.0.0.1:0".parse().expect("addr"));
        cfg.sched.heartbeat_ms = 1_000;
        let d = Dispatcher::start(cfg).await.expect("dispatcher starts");
        let client = Identity::load_or_create(&dir.join(CLIENT_KEY)).expect("client key");
        d.add_client(&client.public(), "swarm")
            .await
            .expect("client");
        let keys = std::fs::read(dir.join(WORKER_KEYS)).expect("worker keys");
        for (i, k) in keys.chunks_exact(32).enumerate() {
            let key = PublicKey::from_bytes(k.try_into().expect("32 bytes")).expect("a key");
            d.add_worker_key(&key, &format!("swarm-{i}"))
                .await
                .expect("worker key");
        }
        println!("ready {} {}", d.local_addr(), d.public_key());
        std::io::stdout().flush().expect("stdout");
        // Until the parent closes stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .expect("stdin");
        d.shutdown().await;
    });
}

/// The child's CPU seconds (user + system) and RSS in MB.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let cpu =
        (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / TICKS_PER_SEC;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0);
    (cpu, rss)
}

/// One size's figures.
struct Figures {
    workers: u64,
    /// Assignments whose result was not recorded (their worker was
    /// dropped mid-run: the tasks ran again elsewhere).
    unrecorded: u64,
    /// Workers the dispatcher dropped before the end.
    dropped: u64,
    register_s: f64,
    rss_base_mb: f64,
    rss_per_worker_kb: f64,
    heartbeats_per_s: f64,
    idle_cpu_pct: f64,
    cpu_per_heartbeat_us: f64,
    tasks_per_s: f64,
    cpu_per_task_us: f64,
}

/// Waits for `cond`, failing the bench after `PHASE_LIMIT`.
async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + PHASE_LIMIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "swarm: {what} took over {PHASE_LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start_child(dir: &Path) -> (Child, SocketAddr, PublicKey) {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .arg("dispatcher")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the dispatcher child");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the child's address");
    let mut words = line.split_whitespace().skip(1);
    let addr = words.next().and_then(|a| a.parse().ok());
    let key = words.next().and_then(|k| k.parse().ok());
    let (Some(addr), Some(key)) = (addr, key) else {
        let _ = child.kill();
        panic!("swarm: the dispatcher child did not start (it printed {line:?})");
    };
    (child, addr, key)
}

fn run_size(n: u64, tasks: u64, idle: Duration) -> Figures {
    let dir = tempfile::tempdir().expect("temp dir");
    let ids: Vec<Identity> = (0..n).map(|_| Identity::generate().expect("key")).collect();
    let keys: Vec<u8> = ids.iter().flat_map(|i| i.public().to_bytes()).collect();
    std::fs::write(dir.path().join(WORKER_KEYS), keys).expect("write keys");
    let me = Identity::load_or_create(&dir.path().join(CLIENT_KEY)).expect("client key");
    let (mut child, addr, dkey) = start_child(dir.path());
    let pid = child.id();
    let figures = runtime(2).block_on(async {
        let counters = Arc::new(Counters::default());
        let (_, rss_base) = usage(pid);
        let started = Instant::now();
        for (i, id) in ids.into_iter().enumerate() {
            let counters = counters.clone();
            tokio::spawn(async move {
                if let Err(e) = worker(id, format!("s{i}"), addr, dkey, counters.clone()).await {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    eprintln!("swarm worker s{i}: {e}");
                }
            });
        }
        wait_for("registration", || {
            counters.registered.load(Ordering::Relaxed) == n
        })
        .await;
        let client = Arc::new(Client::connect(&me, dkey, addr).await.expect("connect"));
        // Registered on the dispatcher's side too.
        let deadline = Instant::now() + PHASE_LIMIT;
        while (client.workers().await.expect("workers").len() as u64) < n {
            assert!(
                Instant::now() < deadline,
                "swarm: workers did not all register"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let register_s = started.elapsed().as_secs_f64();
        // Idle: heartbeats only.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (cpu0, _) = usage(pid);
        let beats0 = counters.heartbeats.load(Ordering::Relaxed);
        let t = Instant::now();
        tokio::time::sleep(idle).await;
        let (cpu1, rss_idle) = usage(pid);
        let secs = t.elapsed().as_secs_f64();
        let beats = (counters.heartbeats.load(Ordering::Relaxed) - beats0) as f64;
        // Placement.
        let module = client.upload_module(&trivial_wasm()).await.expect("upload");
        let (cpu2, _) = usage(pid);
        let clients = vec![client];
        let (took, _) =
            tokio::time::timeout(PHASE_LIMIT, closed_loop(&clients, module, tasks, INFLIGHT))
                .await
                .expect("swarm: the placement phase passed its limit");
        let (cpu3, _) = usage(pid);
        Figures {
            unrecorded: counters.failures.load(Ordering::Relaxed),
            dropped: counters.dropped.load(Ordering::Relaxed),
            workers: n,
            register_s,
            rss_base_mb: rss_base,
            rss_per_worker_kb: (rss_idle - rss_base) * 1024.0 / n as f64,
            heartbeats_per_s: beats / secs,
            idle_cpu_pct: (cpu1 - cpu0) / secs * 100.0,
            cpu_per_heartbeat_us: (cpu1 - cpu0) / beats.max(1.0) * 1e6,
            tasks_per_s: tasks as f64 / took.as_secs_f64(),
            cpu_per_task_us: (cpu3 - cpu2) / tasks as f64 * 1e6,
        }
    });
    drop(child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    figures
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("dispatcher") {
        return dispatcher(Path::new(&args[2]));
    }
    let sizes: Vec<u64> = std::env::var("FABRIC_SWARM_SIZES")
        .unwrap_or_else(|_| "100,300,1000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("FABRIC_SWARM_SIZES: numbers, comma-separated")
        })
        .collect();
    let tasks = env_u64("FABRIC_SWARM_TASKS", 20_000);
    let idle = Duration::from_secs(env_u64("FABRIC_SWARM_IDLE_SECS", 5));
    let mut all = Vec::new();
    for &n in &sizes {
        eprintln!("swarm: {n} workers...");
        let f = run_size(n, tasks, idle);
        println!(
            "swarm {n} workers: registered in {:.2} s; RSS {:.0} KB per worker; idle {:.1}% CPU for {:.0} heartbeats/s ({:.0} us each); {:.0} tasks/s at {:.0} us CPU each; {} workers dropped, {} results not recorded",
            f.register_s,
            f.rss_per_worker_kb,
            f.idle_cpu_pct,
            f.heartbeats_per_s,
            f.cpu_per_heartbeat_us,
            f.tasks_per_s,
            f.cpu_per_task_us,
            f.dropped,
            f.unrecorded
        );
        all.push(f);
    }
    let base = &all[0];
    println!(
        "\nswarm summary: one dispatcher (release), workers in one process ({SLOTS} slots each), {tasks} trivial tasks, {INFLIGHT} in flight; ratios against {} workers",
        base.workers
    );
    println!(
        "{:>8} {:>10} {:>11} {:>12} {:>10} {:>11} {:>10} {:>12} {:>9} {:>13} {:>9} {:>8}",
        "workers",
        "register s",
        "RSS base MB",
        "KB/worker",
        "idle CPU%",
        "us/hbeat",
        "tasks/s",
        "(x base)",
        "us/task",
        "(x base)",
        "hb/s",
        "dropped"
    );
    for f in &all {
        println!(
            "{:>8} {:>10.2} {:>11.0} {:>12.0} {:>10.2} {:>11.0} {:>10.0} {:>12.2} {:>9.0} {:>13.2} {:>9.0} {:>8}",
            f.workers,
            f.register_s,
            f.rss_base_mb,
            f.rss_per_worker_kb,
            f.idle_cpu_pct,
            f.cpu_per_heartbeat_us,
            f.tasks_per_s,
            f.tasks_per_s / base.tasks_per_s,
            f.cpu_per_task_us,
            f.cpu_per_task_us / base.cpu_per_task_us,
            f.heartbeats_per_s,
            f.dropped
        );
    }
}
