//! Submit, placement and completion.

use fabric_proto::{Limits, TaskState, TaskStatus};

use crate::harness::{Cluster, SPIN_WAT, TRIVIAL_WAT, fast_heartbeats, long_limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submitted_task_runs_on_a_worker_and_its_result_is_recorded() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let module = c.module(TRIVIAL_WAT).await;
    let id = c.submit(module, Limits::default(), 0).await;
    let info = c.finished(id).await;
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    assert_eq!(info.state, TaskState::Done);
    assert_eq!(info.attempt, 1);
    assert_eq!(info.worker, Some(w.key), "the record names the worker");
    assert!(!info.dead_letter);
    assert_eq!(info.outcome.expect("outcome").exit_code, Some(0));
    // What `result` reads later is the same record.
    let again = c.client.result(id).await.expect("result");
    assert_eq!(again.status, Some(TaskStatus::Succeeded));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn placement_fills_free_slots_and_keeps_the_rest_queued() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let a = c.add_worker(1).await;
    let b = c.add_worker(1).await;
    let spin = c.module(SPIN_WAT).await;
    let first = c.submit(spin, long_limits(), 0).await;
    let second = c.submit(spin, long_limits(), 0).await;
    let third = c.submit(spin, long_limits(), 0).await;
    let one = c
        .wait_until(first, "placed", |i| i.state == TaskState::Running)
        .await;
    let two = c
        .wait_until(second, "placed", |i| i.state == TaskState::Running)
        .await;
    let mut on: Vec<_> = [one.worker, two.worker].into_iter().flatten().collect();
    on.sort();
    let mut both = vec![a.key, b.key];
    both.sort();
    assert_eq!(on, both, "one task on each worker");
    let queued = c.client.status(third).await.expect("status");
    assert_eq!(
        queued.state,
        TaskState::Queued,
        "no slot is free: {queued:?}"
    );
    assert_eq!(queued.attempt, 0);
    // A freed slot takes the queued task.
    c.client.cancel(first).await.expect("cancel");
    let placed = c
        .wait_until(third, "placed once a slot freed", |i| {
            i.state == TaskState::Running
        })
        .await;
    assert_eq!(placed.worker, one.worker);
    for id in [second, third] {
        c.client.cancel(id).await.expect("cancel");
    }
    a.stop().await;
    b.stop().await;
}
