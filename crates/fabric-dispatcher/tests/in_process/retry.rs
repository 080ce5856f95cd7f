//! A failed attempt is retried after its backoff, measured on the clock.

use std::time::Duration;

use fabric_dispatcher::SchedConfig;
use fabric_proto::{Limits, TaskState, TaskStatus};

use crate::harness::{Cluster, EXIT_1_WAT};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_attempt_waits_out_its_backoff_on_the_clock_then_retries() {
    let mut c = Cluster::start(SchedConfig {
        heartbeat_ms: 100,
        // Heartbeat deadlines out of the way: only the backoff matters here.
        missed_heartbeats: 1_000_000,
        backoff_base_ms: 60_000,
        ..SchedConfig::default()
    })
    .await;
    let w = c.add_worker(1).await;
    let module = c.module(EXIT_1_WAT).await;
    let id = c.submit(module, Limits::default(), 1).await;
    let waiting = c
        .wait_until(id, "attempt 1 fails and waits for its retry", |i| {
            i.attempt == 1 && i.state == TaskState::Queued
        })
        .await;
    assert_eq!(waiting.status, None);
    // The backoff is a minute of the dispatcher's clock: while the clock
    // stands still, a few real ticks later it still waits. (The one fixed
    // wait in these tests: it shows something does not happen.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = c.client.status(id).await.expect("status");
    assert_eq!((still.state, still.attempt), (TaskState::Queued, 1));
    c.clock.advance(Duration::from_secs(61));
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::Failed), "{done:?}");
    assert_eq!(done.attempt, 2, "one retry, then the budget is used up");
    assert!(done.dead_letter, "a task that ends failed is a dead letter");
    assert_eq!(done.outcome.expect("outcome").exit_code, Some(1));
    w.stop().await;
}
