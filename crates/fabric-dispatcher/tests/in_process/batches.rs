//! Many tasks in one request cost the store one commit and one flush: a
//! `submit_many` of a thousand tasks, and a job with its record and every
//! task (issue 27).

use fabric_proto::{JobSpec, StepSpec, TaskKind, TaskSpec};
use fabric_store::IoTally;

use crate::harness::{Cluster, TRIVIAL_WAT, fast_heartbeats};

fn step(name: &str, module: fabric_proto::Sha256, after: &[&str]) -> StepSpec {
    StepSpec {
        after: after.iter().map(|s| s.to_string()).collect(),
        ..StepSpec::new(name, TaskKind::Wasm { module })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_in_one_request_are_one_commit_and_one_flush() {
    // No worker: nothing is placed, so the only writes are the submits'.
    let c = Cluster::start(fast_heartbeats()).await;
    let module = c.module(TRIVIAL_WAT).await;
    let store = c.dispatcher.store().clone();

    let before = store.io_tally();
    let queued = c
        .client
        .submit_many(vec![TaskSpec::wasm(module); 1000])
        .await
        .expect("submit 1,000 tasks");
    assert_eq!(queued.len(), 1000);
    assert_eq!(
        store.io_tally().since(before),
        IoTally {
            commits: 1,
            flushes: 1
        },
        "1,000 tasks in one submit"
    );

    let before = store.io_tally();
    let job = c
        .client
        .submit_job(JobSpec {
            name: "fan".into(),
            steps: vec![
                step("first", module, &[]),
                step("left", module, &["first"]),
                step("right", module, &["first"]),
                step("last", module, &["left", "right"]),
            ],
        })
        .await
        .expect("submit a job");
    assert_eq!(
        store.io_tally().since(before),
        IoTally {
            commits: 1,
            flushes: 1
        },
        "a job's record and its 4 tasks"
    );
    let stored = store.job(&job.id).expect("read the job").expect("stored");
    for t in stored.all_tasks() {
        assert!(store.task(t).expect("read").is_some(), "task {t} stored");
    }
}
