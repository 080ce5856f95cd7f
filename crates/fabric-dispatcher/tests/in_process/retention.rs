//! Retention runs on the dispatcher's clock: finished tasks are forgotten
//! once their retention passes, live ones never.

use std::time::Duration;

use fabric_proto::{Limits, TaskStatus};

use crate::harness::{Cluster, PATIENCE, TRIVIAL_WAT, eventually, fast_heartbeats};

const DAY: u64 = 24 * 3600 * 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_tasks_are_forgotten_after_their_retention_on_the_clock() {
    let mut c = Cluster::start_with(fast_heartbeats(), |cfg| {
        cfg.retention.interval = Duration::from_millis(10);
        cfg.retention.policy.results_max_age_ms = DAY;
    })
    .await;
    let w = c.add_worker(1).await;
    let module = c.module(TRIVIAL_WAT).await;
    let id = c.submit(module, Limits::default(), 0).await;
    assert_eq!(c.finished(id).await.status, Some(TaskStatus::Succeeded));
    // Sweeps run meanwhile, but the clock has not moved: it stays. (A short
    // wait that shows something does not happen.)
    tokio::time::sleep(Duration::from_millis(100)).await;
    c.client.status(id).await.expect("still recorded");
    c.clock.advance(Duration::from_millis(DAY));
    let client = &c.client;
    eventually("the finished task is forgotten", || async {
        client.status(id).await.is_err()
    })
    .await;
    let err = client.status(id).await.expect_err("gone");
    assert_eq!(
        err.code(),
        Some(fabric_proto::wire::ErrorCode::NotFound),
        "{err}"
    );
    // Its module is still there for new tasks until the blob retention.
    let next = c.submit(module, Limits::default(), 0).await;
    let done = tokio::time::timeout(PATIENCE, c.finished(next))
        .await
        .expect("in time");
    assert_eq!(done.status, Some(TaskStatus::Succeeded));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schedules_module_outlives_the_blob_retention() {
    use fabric_client::Client;
    use fabric_net::Identity;
    use fabric_proto::{CatchUpPolicy, Overlap, ScheduleAction, ScheduleSpec, TaskSpec};

    let mut c = Cluster::start_with(fast_heartbeats(), |cfg| {
        cfg.retention.interval = Duration::from_millis(10);
    })
    .await;
    let w = c.add_worker(1).await;
    let key = Identity::generate().expect("admin key");
    c.dispatcher
        .add_admin(&key.public(), "admin")
        .await
        .expect("admin trusted");
    let admin = Client::connect(&key, c.dispatcher.public_key(), c.dispatcher.local_addr())
        .await
        .expect("admin connects");
    let module = c.module(TRIVIAL_WAT).await;
    admin
        .add_schedule(ScheduleSpec {
            name: "monthly".into(),
            cron: "0 0 1 * *".into(),
            tz: "UTC".into(),
            overlap: Overlap::Skip,
            catch_up: CatchUpPolicy::None,
            task: Some(TaskSpec::wasm(module)),
            job: None,
        })
        .await
        .expect("add");
    // One run, finished: the module was in use, and no longer is.
    let first = admin
        .set_schedule("monthly", ScheduleAction::RunNow)
        .await
        .expect("run now");
    let id = first.runs.last().and_then(|r| r.task).expect("a task");
    assert_eq!(c.finished(id).await.status, Some(TaskStatus::Succeeded));
    admin
        .set_schedule("monthly", ScheduleAction::Pause)
        .await
        .expect("pause");
    w.stop().await;
    // Eight days on: a module no live task uses would be swept (7 days).
    c.clock.advance(Duration::from_millis(8 * DAY));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ran = admin
        .set_schedule("monthly", ScheduleAction::RunNow)
        .await
        .expect("run now");
    let last = ran.runs.last().expect("a run");
    assert!(last.task.is_some(), "its module was kept: {last:?}");
}
