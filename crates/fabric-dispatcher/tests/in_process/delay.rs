//! Delayed tasks on the manual clock: `scheduled` until their time (listed
//! so, and cancellable), then queued and run; none starts early.

use std::time::Duration;

use fabric_proto::{Clock as _, TaskSpec, TaskState, TaskStatus};

use crate::harness::{Cluster, eventually, fast_heartbeats};

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delayed_task_is_scheduled_until_its_time_then_runs() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(2).await;
    let module = c.module(NOOP).await;
    let now = c.clock.now_ms();
    let mut spec = TaskSpec::wasm(module);
    spec.not_before_ms = Some(now + 10_000);
    let id = c.client.submit(spec.clone()).await.expect("submit");
    let other = c.client.submit(spec).await.expect("submit");
    let info = c.client.status(id).await.expect("status");
    assert_eq!(info.state, TaskState::Scheduled, "{info:?}");
    let why = info.waiting.clone().unwrap_or_default();
    assert!(why.starts_with("scheduled: starts at "), "{why}");
    let listed = c
        .client
        .list(Some(TaskState::Scheduled), 10, None)
        .await
        .expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Cancellable while it waits.
    c.client.cancel(other).await.expect("cancel");
    // Not a moment early: 9.9 s on, still scheduled.
    c.advance_keeping(
        Duration::from_millis(9_900),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    let info = c.client.status(id).await.expect("status");
    assert_eq!(info.state, TaskState::Scheduled, "{info:?}");
    c.advance_keeping(
        Duration::from_millis(200),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::Succeeded), "{done:?}");
    let started = done.history.first().expect("an attempt").started_ms;
    assert!(
        started >= now + 10_000,
        "started at {started}, due at {}",
        now + 10_000
    );
    let cancelled = c.client.status(other).await.expect("status");
    assert_eq!(
        cancelled.status,
        Some(TaskStatus::Cancelled),
        "{cancelled:?}"
    );
    eventually("no task is left scheduled", || async {
        c.client
            .list(Some(TaskState::Scheduled), 10, None)
            .await
            .expect("list")
            .is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_time_already_past_queues_at_once_and_a_year_ahead_is_refused() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let _w = c.add_worker(1).await;
    let module = c.module(NOOP).await;
    let now = c.clock.now_ms();
    let mut spec = TaskSpec::wasm(module);
    spec.not_before_ms = Some(now.saturating_sub(60_000));
    let id = c.client.submit(spec.clone()).await.expect("submit");
    assert_eq!(c.finished(id).await.status, Some(TaskStatus::Succeeded));
    spec.not_before_ms = Some(now + fabric_proto::MAX_DELAY_MS + 60_000);
    let err = c.client.submit(spec).await.expect_err("too far ahead");
    assert!(err.to_string().contains("at most a year ahead"), "{err}");
}
