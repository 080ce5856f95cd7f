//! Cancelling a running task stops it on its worker and frees the slot.

use fabric_proto::{Limits, TaskState, TaskStatus};

use crate::harness::{Cluster, SPIN_WAT, TRIVIAL_WAT, fast_heartbeats, long_limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_running_task_stops_it_and_frees_its_slot() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let spin = c.module(SPIN_WAT).await;
    let id = c.submit(spin, long_limits(), 0).await;
    let running = c
        .wait_until(id, "running", |i| i.state == TaskState::Running)
        .await;
    assert_eq!(running.worker, Some(w.key));
    let cancelled = c.client.cancel(id).await.expect("cancel");
    assert_eq!(cancelled.status, Some(TaskStatus::Cancelled));
    assert_eq!(cancelled.state, TaskState::Cancelled);
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::Cancelled));
    // Cancelling again is a conflict, not a second cancel.
    let again = c.client.cancel(id).await.expect_err("already finished");
    assert!(again.to_string().contains("already finished"), "{again}");
    // The spinning guest really stopped: the one-slot worker runs the next
    // task long before the spinner's 60 s timeout.
    let trivial = c.module(TRIVIAL_WAT).await;
    let next = c.submit(trivial, Limits::default(), 0).await;
    let info = c.finished(next).await;
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    assert_eq!(info.worker, Some(w.key));
    w.stop().await;
}
