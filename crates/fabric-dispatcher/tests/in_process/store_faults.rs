//! A failing store: memory follows what is on disk, waiters hear the
//! error, and the cluster carries on once the store works again.

use std::time::Duration;

use fabric_proto::{Limits, TaskState, TaskStatus};

use crate::harness::{Cluster, PATIENCE, SPIN_WAT, fast_heartbeats, long_limits};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_the_store_cannot_record_changes_nothing() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let spin = c.module(SPIN_WAT).await;
    let id = c.submit(spin, long_limits(), 0).await;
    c.wait_until(id, "running", |i| i.state == TaskState::Running)
        .await;
    let store = c.dispatcher.store().clone();
    // A first attempt is not written: the store still says queued.
    let before = store.task(&id).expect("read").expect("stored");
    assert_eq!((before.state, before.attempt), (TaskState::Queued, 0));
    store.fail_writes(true);
    let err = c.client.cancel(id).await.expect_err("the write fails");
    assert!(err.to_string().contains("injected write failure"), "{err}");
    let live = c.client.status(id).await.expect("status");
    assert_eq!(
        live.state,
        TaskState::Running,
        "memory was put back: {live:?}"
    );
    assert_eq!(live.worker, Some(w.key));
    let stored = store.task(&id).expect("read").expect("stored");
    assert_eq!(stored, before, "the store is as it was");
    store.fail_writes(false);
    let cancelled = c
        .client
        .cancel(id)
        .await
        .expect("cancel once the store works");
    assert_eq!(cancelled.status, Some(TaskStatus::Cancelled));
    assert!(store.result(&id).expect("read").is_some());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_the_store_cannot_record_ends_the_wait_with_the_error_and_is_run_again() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let spin = c.module(SPIN_WAT).await;
    let limits = Limits {
        timeout_ms: 1_000,
        fuel: 1_000_000_000_000,
        ..Limits::default()
    };
    let id = c.submit(spin, limits, 0).await;
    c.wait_until(id, "running", |i| i.state == TaskState::Running)
        .await;
    let store = c.dispatcher.store().clone();
    let before = store.task(&id).expect("read").expect("stored");
    store.fail_writes(true);
    // The guest times out after 1 s; its report cannot be recorded.
    let waited = tokio::time::timeout(PATIENCE, c.client.wait(id, |_| {}))
        .await
        .expect("the wait ends instead of hanging");
    let err = waited.expect_err("the result was not recorded");
    assert!(
        err.to_string()
            .contains("could not record attempt 1's result"),
        "{err}"
    );
    // Neither memory nor the store calls the task finished (the broken
    // exchange counts as a lost attempt in memory; the leases that could
    // not be written go back to the queue).
    let live = c.client.status(id).await.expect("status");
    assert!(!live.state.is_terminal(), "{live:?}");
    let stored = store.task(&id).expect("read").expect("stored");
    assert_eq!(stored, before, "the store is as it was");
    assert!(store.result(&id).expect("read").is_none());
    // Healed, it runs again under a higher attempt and is recorded once.
    store.fail_writes(false);
    c.advance_keeping(Duration::from_secs(2), Duration::from_millis(500), &[w.key])
        .await;
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::TimedOut), "{done:?}");
    assert!(done.attempt >= 2, "{done:?}");
    let stored = store.task(&id).expect("read").expect("stored");
    assert_eq!(stored.state, done.state);
    assert_eq!(stored.attempt, done.attempt);
    assert!(store.result(&id).expect("read").is_some());
    w.stop().await;
}

/// A schedule added while the store's flushes fail is stored all the
/// same (only its flush failed); the caller hears the error, and the
/// schedule fires once the store works, without another change to wake
/// the ticks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedule_whose_flush_failed_still_fires() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let admin = crate::schedules::admin(&c).await;
    let noop = c
        .module(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
        .await;
    // Ticks with no schedule: nothing is due.
    c.advance_keeping(Duration::from_secs(2), Duration::from_millis(500), &[w.key])
        .await;
    let store = c.dispatcher.store().clone();
    store.fail_flushes(true);
    let spec = crate::schedules::every_2s(
        "tick",
        fabric_proto::TaskSpec::wasm(noop),
        fabric_proto::CatchUpPolicy::One,
    );
    let err = admin.add_schedule(spec).await.expect_err("its flush fails");
    assert!(err.to_string().contains("injected flush failure"), "{err}");
    store.fail_flushes(false);
    admin.schedule("tick").await.expect("stored all the same");
    c.advance_keeping(Duration::from_secs(6), Duration::from_millis(100), &[w.key])
        .await;
    let rec = admin.schedule("tick").await.expect("show");
    assert!(
        rec.runs.iter().any(|r| r.task.is_some()),
        "no run in 6 s of a schedule every 2 s: {rec:?}"
    );
    w.stop().await;
}
