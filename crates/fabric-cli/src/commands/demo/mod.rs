//! `fabric demo`: an embedded cluster in a temp dir runs the example jobs;
//! `--export DIR` writes them out instead.

mod export;
mod mapreduce;
mod native;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use fabric_client::Client;
use fabric_proto::{Limits, Sha256, TaskSpec, TaskStatus};

use super::local_cluster::LocalCluster;
use super::runtime;
use crate::cli::DemoArgs;
use crate::config::{LocalWorkers, ServeConfig};
use crate::output::{DemoJob, FanOut, Output};
use crate::profile;

mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

const TEXT: &str = "Fabric turns the machines of a local network into one compute cluster \
for untrusted work. Workers run WebAssembly modules under fuel, memory and time limits; \
the dispatcher queues the work, signs a manifest for every task, and records every result \
in a durable history. The work is untrusted, so the sandbox is the point: the work never \
reaches the host, and the work always ends.";

const SALES: &str = r#"[
 {"region": "north", "amount": 120.5}, {"region": "south", "amount": 80},
 {"region": "north", "amount": 42}, {"region": "east", "amount": 310.25},
 {"region": "south", "amount": 19.75}, {"region": "east", "amount": 5}
]"#;

struct Job {
    name: &'static str,
    what: &'static str,
    wasm: &'static [u8],
    args: &'static [&'static str],
    input: &'static str,
    fuel: Option<u64>,
    expect: TaskStatus,
}

const JOBS: &[Job] = &[
    Job {
        name: "wordfreq",
        what: "top words of a paragraph",
        wasm: guests::WORDFREQ,
        args: &["--top", "3"],
        input: TEXT,
        fuel: None,
        expect: TaskStatus::Succeeded,
    },
    Job {
        name: "primes",
        what: "sieve up to 2,000,000",
        wasm: guests::PRIMES,
        args: &[],
        input: r#"{"limit": 2000000}"#,
        fuel: None,
        expect: TaskStatus::Succeeded,
    },
    Job {
        name: "mandelbrot",
        what: "render a 160x120 tile (PGM)",
        wasm: guests::MANDELBROT,
        args: &[],
        input: r#"{"width": 160, "height": 120}"#,
        fuel: None,
        expect: TaskStatus::Succeeded,
    },
    Job {
        name: "json-transform",
        what: "group sales by region",
        wasm: guests::JSON_TRANSFORM,
        args: &["--group-by", "region", "--sum", "amount"],
        input: SALES,
        fuel: None,
        expect: TaskStatus::Succeeded,
    },
    Job {
        name: "runaway",
        what: "an endless loop, stopped by its fuel limit",
        wasm: guests::SPIN,
        args: &[],
        input: "",
        fuel: Some(50_000_000),
        expect: TaskStatus::FuelExhausted,
    },
];

/// Tasks in the fan-out round at the end.
const FAN_OUT: u32 = 200;

/// Task slots of each demo worker.
const SLOTS: u32 = 2;

fn spec(module: Sha256, args: &[&str], input: &[u8], fuel: Option<u64>) -> TaskSpec {
    let mut limits = Limits::default();
    if let Some(f) = fuel {
        limits.fuel = f;
    }
    TaskSpec {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        input: input.to_vec(),
        limits,
        ..TaskSpec::wasm(module)
    }
}

/// A throwaway dispatcher in `dir`: loopback, no mDNS, a short heartbeat.
fn serve_config(dir: &Path) -> ServeConfig {
    ServeConfig {
        data_dir: dir.join("dispatcher"),
        listen: SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0),
        mdns: None,
        heartbeat: Some(Duration::from_millis(500)),
        aging: None,
        worker_keys: Vec::new(),
        worker_caps: fabric_dispatcher::WorkerCaps::default(),
        retention: fabric_dispatcher::RetentionPolicy::default(),
        max_queued: None,
        api: None,
        replace_profile: true,
        operator_key: None,
        cluster: None,
    }
}

pub(crate) fn execute(args: &DemoArgs) -> anyhow::Result<i32> {
    if args.workers == 0 {
        return Err(crate::usage("--workers must be at least 1"));
    }
    let output = Output::new(args.json);
    if let Some(dir) = &args.export {
        return export::execute(dir, output);
    }
    let dir = tempfile::tempdir().context("creating a temp dir for the demo cluster")?;
    let native = native::config();
    let workers = LocalWorkers {
        count: args.workers,
        slots: SLOTS,
        speak: false,
        native: native.as_ref().ok().map(|(n, _)| n.clone()),
    };
    runtime::block_on(async {
        let started = Instant::now();
        let profile_path = dir.path().join("cluster.toml");
        let local =
            LocalCluster::start(&serve_config(dir.path()), Some(&profile_path), workers).await?;
        let client = profile::connect(Some(&profile_path)).await?;
        local
            .wait_for_workers(&client, Duration::from_secs(20))
            .await?;
        output.demo_header(&local.served.local_addr, args.workers, dir.path());
        let jobs_ok = run_jobs(&client, output).await?;
        let native_ok = match &native {
            Ok((_, layers)) => native::run(&client, output, layers).await?,
            Err(why) => {
                output.demo_native_skipped(why);
                true
            }
        };
        let job_ok = mapreduce::run(&client, output).await?;
        let fan_ok = fan_out(&client, output).await?;
        client.close().await;
        local.stop().await;
        let all_ok = jobs_ok && native_ok && job_ok && fan_ok;
        output.demo_footer(all_ok, started.elapsed());
        Ok(if all_ok { 0 } else { 1 })
    })
}

/// Submits every example job, then prints each as it finishes; true when
/// all ended as expected.
async fn run_jobs(client: &Client, output: Output) -> anyhow::Result<bool> {
    let mut ids = Vec::new();
    for job in JOBS {
        let module = client.upload_module(job.wasm).await?;
        let spec = spec(module, job.args, job.input.as_bytes(), job.fuel);
        ids.push(client.submit(spec).await?);
    }
    let mut all_ok = true;
    for (job, id) in JOBS.iter().zip(ids) {
        let info = client.wait(id, |_| {}).await?;
        let outcome = info
            .outcome
            .as_ref()
            .context("finished task without an outcome")?;
        let ok = outcome.status == job.expect;
        all_ok &= ok;
        let line = DemoJob {
            name: job.name,
            what: job.what,
            expected: job.expect,
            ok,
        };
        output.demo_job(&line, &info, outcome);
    }
    Ok(all_ok)
}

/// Many small tasks spread over the workers; true when all succeeded.
async fn fan_out(client: &Client, output: Output) -> anyhow::Result<bool> {
    let primes = client.upload_module(guests::PRIMES).await?;
    let started = Instant::now();
    let mut pending = Vec::new();
    for i in 0..FAN_OUT {
        let input = format!("{{\"limit\": {}}}", 1000 + i);
        pending.push(
            client
                .submit(spec(primes, &[], input.as_bytes(), None))
                .await?,
        );
    }
    let mut per_worker = BTreeMap::<String, u32>::new();
    let mut succeeded = 0;
    for id in pending {
        let info = client.wait(id, |_| {}).await?;
        if info.status == Some(TaskStatus::Succeeded) {
            succeeded += 1;
        }
        let worker = info.worker.map_or_else(|| "?".into(), |w| w.to_string());
        *per_worker.entry(worker).or_default() += 1;
    }
    let took = started.elapsed();
    let stored = client
        .list(None, FAN_OUT + JOBS.len() as u32 + 20, None)
        .await?
        .len();
    output.demo_fan_out(&FanOut {
        tasks: FAN_OUT,
        succeeded,
        took,
        per_worker,
        stored,
    });
    Ok(succeeded == FAN_OUT)
}
