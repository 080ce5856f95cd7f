//! `fabric demo`: an embedded cluster in a temp dir runs the example jobs.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use fabric_proto::{Limits, Priority, TaskKind, TaskSpec, TaskStatus};

use super::cluster::{block_on, serve, spawn_workers};
use crate::cli::{DemoArgs, ServeOpts};
use crate::output::{self, DemoLine};
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

fn spec(module: fabric_proto::Sha256, job: &Job) -> TaskSpec {
    let mut limits = Limits::default();
    if let Some(f) = job.fuel {
        limits.fuel = f;
    }
    TaskSpec {
        kind: TaskKind::Wasm { module },
        args: job.args.iter().map(|s| (*s).to_owned()).collect(),
        env: Vec::new(),
        input: job.input.as_bytes().to_vec(),
        limits,
        priority: Priority::Normal,
        retries: 0,
    }
}

pub(crate) fn execute(args: DemoArgs) -> anyhow::Result<i32> {
    if args.workers == 0 {
        return Err(crate::usage("--workers must be at least 1"));
    }
    let dir = tempfile::tempdir().context("creating a temp dir for the demo cluster")?;
    block_on(async move {
        let started = Instant::now();
        let opts = ServeOpts {
            data_dir: Some(dir.path().join("dispatcher")),
            listen: Some("127.0.0.1:0".parse().expect("valid")),
            mdns_interface: None,
            no_mdns: true,
            heartbeat: Some(Duration::from_millis(500)),
            worker_keys: Vec::new(),
            config: None,
        };
        let cluster = dir.path().join("cluster.toml");
        let served = serve(
            &opts,
            Some(&cluster),
            opts.listen.expect("set"),
            None,
            false,
        )
        .await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let workers = spawn_workers(&served, args.workers, 2, stop_rx);
        let client = profile::connect(Some(&cluster)).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let n = client.workers().await?.len() as u32;
            if n >= args.workers {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {n} of {} demo workers registered within 20 s",
                args.workers
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        output::demo_header(&served.local_addr, args.workers, dir.path(), args.json);

        let mut ids = Vec::new();
        for job in JOBS {
            let module = client.upload_module(job.wasm).await?;
            ids.push(client.submit(spec(module, job)).await?);
        }
        let mut all_ok = true;
        for (job, id) in JOBS.iter().zip(ids) {
            let info = client.wait(id, |_| {}).await?;
            let outcome = info
                .outcome
                .clone()
                .context("finished task without an outcome")?;
            let ok = outcome.status == job.expect;
            all_ok &= ok;
            output::demo_line(
                &DemoLine {
                    name: job.name,
                    what: job.what,
                    expected: job.expect,
                    ok,
                },
                &info,
                &outcome,
                args.json,
            );
        }

        // Fan-out: many small tasks spread over the workers.
        let primes = client.upload_module(guests::PRIMES).await?;
        let fan_start = Instant::now();
        let mut pending = Vec::new();
        for i in 0..FAN_OUT {
            let job = Job {
                name: "primes",
                what: "",
                wasm: guests::PRIMES,
                args: &[],
                input: "",
                fuel: None,
                expect: TaskStatus::Succeeded,
            };
            let mut s = spec(primes, &job);
            s.input = format!("{{\"limit\": {}}}", 1000 + i).into_bytes();
            pending.push(client.submit(s).await?);
        }
        let mut per_worker = std::collections::BTreeMap::<String, u32>::new();
        let mut fan_ok = 0;
        for id in pending {
            let info = client.wait(id, |_| {}).await?;
            if info.status == Some(TaskStatus::Succeeded) {
                fan_ok += 1;
            }
            let worker = info.worker.map_or_else(|| "?".into(), |w| w.to_string());
            *per_worker.entry(worker).or_default() += 1;
        }
        let stored = client
            .list(None, FAN_OUT + JOBS.len() as u32 + 10, None)
            .await?
            .len();
        all_ok &= fan_ok == FAN_OUT;
        output::demo_fan_out(
            FAN_OUT,
            fan_ok,
            fan_start.elapsed(),
            &per_worker,
            stored,
            args.json,
        );

        client.close();
        let _ = stop_tx.send(true);
        for w in workers {
            let _ = w.await;
        }
        served.dispatcher.shutdown().await;
        output::demo_footer(all_ok, started.elapsed(), args.json);
        Ok(if all_ok { 0 } else { 1 })
    })
}
