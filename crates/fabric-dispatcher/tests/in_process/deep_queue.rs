//! A deep queue: past `hot_tasks`, submitted tasks are held cold (slim)
//! and read back from the store when placement reaches them. They show,
//! cancel and run like any queued task, each once, as attempt 1.

use fabric_dispatcher::SchedConfig;
use fabric_proto::{TaskSpec, TaskState, TaskStatus};

use crate::harness::Cluster;

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_held_cold_in_a_deep_queue_show_cancel_and_run_once() {
    let mut c = Cluster::start(SchedConfig {
        heartbeat_ms: 100,
        hot_tasks: 3,
        ..SchedConfig::default()
    })
    .await;
    let noop = c.module(NOOP).await;
    // No worker yet: all 20 wait, 17 of them held cold.
    let specs: Vec<TaskSpec> = (0..20)
        .map(|i| TaskSpec {
            input: format!("task {i}").into_bytes(),
            ..TaskSpec::wasm(noop)
        })
        .collect();
    let ids: Vec<_> = c
        .client
        .submit_many(specs)
        .await
        .expect("submit")
        .into_iter()
        .map(|q| q.id)
        .collect();
    let counts = c.client.counts().await.expect("counts");
    assert_eq!(counts.queued, 20, "{counts:?}");
    // A cold one shows as queued, with its own input; one is cancelled.
    let last = c.client.status(ids[19]).await.expect("status");
    assert_eq!(last.state, TaskState::Queued, "{last:?}");
    // And says why it waits, as a task held whole does.
    assert_eq!(
        last.waiting.as_deref(),
        Some("no worker is registered"),
        "{last:?}"
    );
    let cancelled = c.client.cancel(ids[10]).await.expect("cancel");
    assert_eq!(cancelled.status, Some(TaskStatus::Cancelled));
    let w = c.add_worker(2).await;
    for (i, id) in ids.iter().enumerate() {
        let info = c.finished(*id).await;
        if i == 10 {
            assert_eq!(info.status, Some(TaskStatus::Cancelled), "{info:?}");
            continue;
        }
        assert_eq!(
            info.status,
            Some(TaskStatus::Succeeded),
            "task {i}: {info:?}"
        );
        assert_eq!(info.attempt, 1, "task {i}: {info:?}");
    }
    let counts = c.client.counts().await.expect("counts");
    assert_eq!(counts.finished(TaskStatus::Succeeded), 19, "{counts:?}");
    assert_eq!(counts.total, 20, "{counts:?}");
    w.stop().await;
}
