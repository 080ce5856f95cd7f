//! A fan-out of `FABRIC_BENCH_FANOUT` trivial tasks (default 10,000) on a
//! cluster of two in-process workers, submitted two ways on fresh clusters,
//! side by side:
//!
//! - baseline, one by one: a `submit` per task (256 in flight over four
//!   connections, which is kinder than a shell loop of `fabric submit`);
//! - as one job: one `submit_job` whose one step fans out over that many
//!   items, stored in one transaction with one flush.
//!
//! It prints, for each, the time until every task was acknowledged and
//! until every task finished, and the ratios (baseline / job).

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use fabric_benches::{env_u64, start_cluster, trivial_wasm};
use fabric_client::Client;
use fabric_proto::{BlobRef, EachItem, JobSpec, StepSpec, TaskKind, TaskSpec, TaskStatus};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Waits until `n` tasks succeeded.
async fn all_done(client: &Client, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let c = client.counts().await.expect("counts");
        let done: u64 = c.finished.iter().map(|(_, k)| k).sum();
        if done >= n {
            assert_eq!(
                c.finished(TaskStatus::Succeeded),
                n,
                "every task succeeded: {c:?}"
            );
            return;
        }
        assert!(Instant::now() < deadline, "the tasks did not finish: {c:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (acknowledged, finished) for `n` tasks submitted one by one.
async fn one_by_one(n: u64) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_d, clients) = start_cluster(dir.path(), 2).await;
    let module = clients[0]
        .upload_module(&trivial_wasm())
        .await
        .expect("upload");
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("permit");
        let c = clients[i as usize % clients.len()].clone();
        handles.push(tokio::spawn(async move {
            c.submit(TaskSpec::wasm(module)).await.expect("submit");
            drop(permit);
        }));
    }
    for h in handles {
        h.await.expect("submit task");
    }
    let acked = start.elapsed();
    all_done(&clients[0], n).await;
    (acked, start.elapsed())
}

/// (acknowledged, finished) for `n` tasks submitted as one job.
async fn as_a_job(n: u64) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_d, clients) = start_cluster(dir.path(), 2).await;
    let module = clients[0]
        .upload_module(&trivial_wasm())
        .await
        .expect("upload");
    let empty = BlobRef::of(b"");
    let step = StepSpec {
        each: (0..n)
            .map(|i| EachItem {
                name: format!("item-{i}"),
                blob: empty,
            })
            .collect(),
        ..StepSpec::new("fan", TaskKind::Wasm { module })
    };
    let start = Instant::now();
    let job = clients[0]
        .submit_job(JobSpec {
            name: "fan-out".into(),
            steps: vec![step],
        })
        .await
        .expect("submit job");
    let acked = start.elapsed();
    assert_eq!(job.tasks[0].len() as u64, n);
    all_done(&clients[0], n).await;
    (acked, start.elapsed())
}

fn main() {
    let n = env_u64("FABRIC_BENCH_FANOUT", 10_000);
    let rt = runtime();
    println!(
        "job_fanout: {n} trivial tasks, 2 workers x {} slots, fresh cluster each",
        fabric_benches::SLOTS
    );
    let (base_ack, base_done) = rt.block_on(one_by_one(n));
    let (job_ack, job_done) = rt.block_on(as_a_job(n));
    let rate = |d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!("| way | all acknowledged | all finished | tasks/s (finished) |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| one by one (baseline) | {:.2} s | {:.2} s | {:.0} |",
        base_ack.as_secs_f64(),
        base_done.as_secs_f64(),
        rate(base_done)
    );
    println!(
        "| as one job | {:.2} s | {:.2} s | {:.0} |",
        job_ack.as_secs_f64(),
        job_done.as_secs_f64(),
        rate(job_done)
    );
    println!(
        "ratio (one by one / job): acknowledged {:.1}x, finished {:.2}x",
        base_ack.as_secs_f64() / job_ack.as_secs_f64().max(1e-9),
        base_done.as_secs_f64() / job_done.as_secs_f64().max(1e-9)
    );
}
