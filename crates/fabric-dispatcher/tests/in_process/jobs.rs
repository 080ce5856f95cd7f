//! Jobs at the protocol: a task outside a job may not carry a fan-in, and
//! a job's task is rescued with its job, not retried alone.

use fabric_client::Client;
use fabric_net::Identity;
use fabric_proto::{JobSpec, StepSpec, TaskKind, TaskSpec, TaskStatus};

use crate::harness::{Cluster, fast_heartbeats};

const EXIT_1: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 1))))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fan_in_is_a_jobs_and_a_jobs_task_is_rescued_with_its_job() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let _w = c.add_worker(1).await;
    let module = c.module(EXIT_1).await;
    let parent = c
        .client
        .submit(TaskSpec::wasm(module))
        .await
        .expect("submit");
    let mut spec = TaskSpec::wasm(module);
    spec.fan_in = vec![parent; 3];
    let err = c
        .client
        .submit(spec)
        .await
        .expect_err("a fan-in outside a job");
    assert!(err.to_string().contains("fan_in is a job's"), "{err}");

    let job = c
        .client
        .submit_job(JobSpec {
            name: "one".into(),
            steps: vec![StepSpec::new("fails", TaskKind::Wasm { module })],
        })
        .await
        .expect("submit job");
    let task = job.tasks[0][0];
    let info = c.finished(task).await;
    assert_eq!(info.status, Some(TaskStatus::Failed), "{info:?}");
    assert!(info.dead_letter, "{info:?}");
    // Retry and rescue are an admin's.
    let key = Identity::generate().expect("admin key");
    c.dispatcher
        .add_admin(&key.public(), "admin")
        .await
        .expect("admin trusted");
    let admin = Client::connect(&key, c.dispatcher.public_key(), c.dispatcher.local_addr())
        .await
        .expect("admin connects");
    let err = admin.retry(task).await.expect_err("retried alone");
    assert!(err.to_string().contains("fabric job retry"), "{err}");
    assert_eq!(admin.retry_job(job.id).await.expect("rescue"), 1);
}
