//! Many tasks, and processes killed with SIGKILL: nothing acknowledged is
//! lost and every result is recorded exactly once.

use std::collections::HashSet;
use std::time::Duration;

use fabric_proto::{TaskId, TaskState, TaskStatus};
use fabric_store::Store;
use fabric_tests::harness::cluster::{
    TRIVIAL_WAT, client, countdown_wat, free_udp_port, spec, start_dispatcher, start_worker,
    wait_running, wait_workers,
};
use fabric_tests::harness::sandbox::Sandbox;

/// Opens the dispatcher's store (after it stopped) and checks every id has
/// exactly one recorded result, succeeded. The results table is keyed by
/// task id, so a second write would only overwrite the first: the store's
/// counter of result writes (bumped in the same transaction as each write,
/// kept across restarts) is what shows each was written once.
fn check_recorded_once(data: &std::path::Path, ids: &[TaskId]) {
    let store = Store::open(&data.join("store")).expect("open store after the dispatcher stopped");
    let totals = store.totals().expect("totals");
    assert_eq!(
        totals.finished_total() as usize,
        ids.len(),
        "result writes, one per task: {totals:?}"
    );
    assert_eq!(
        totals.finished(TaskStatus::Succeeded) as usize,
        ids.len(),
        "{totals:?}"
    );
    let counts = store.counts().expect("counts");
    assert_eq!(
        counts.results as usize,
        ids.len(),
        "results recorded: {counts:?}"
    );
    assert_eq!(counts.live, 0, "unfinished tasks remain: {counts:?}");
    for id in ids {
        let rec = store.task(id).expect("read").expect("task stored");
        assert_eq!(rec.state, TaskState::Done, "{id}");
        let outcome = store.result(id).expect("read").expect("result stored");
        assert_eq!(outcome.status, TaskStatus::Succeeded, "{id}: {outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_each_recorded_once() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let _w1 = start_worker(&sb, "w1", &d, 4);
    let _w2 = start_worker(&sb, "w2", &d, 4);
    let c = std::sync::Arc::new(client(&d.profile).await);
    wait_workers(&c, 2, Duration::from_secs(30)).await;
    let module = c
        .upload_module(&wat::parse_str(TRIVIAL_WAT).unwrap())
        .await
        .unwrap();
    let mut handles = Vec::new();
    for _ in 0..1000 {
        let c = c.clone();
        handles.push(tokio::spawn(async move {
            let id = c.submit(spec(module)).await.expect("submit");
            let info = c.wait(id, |_| {}).await.expect("wait");
            (id, info)
        }));
    }
    let mut ids = Vec::new();
    let mut workers = HashSet::new();
    for h in handles {
        let (id, info) = h.await.unwrap();
        assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        workers.insert(info.worker);
        ids.push(id);
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1000);
    assert_eq!(workers.len(), 2, "both workers took work: {workers:?}");
    c.close().await;
    let status = d.proc.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "dispatcher exit {status:?}: {}",
        d.proc.stderr()
    );
    check_recorded_once(&sb.dir.path().join("d"), &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_loses_nothing() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let mut w1 = start_worker(&sb, "w1", &d, 2);
    let _w2 = start_worker(&sb, "w2", &d, 2);
    let c = std::sync::Arc::new(client(&d.profile).await);
    wait_workers(&c, 2, Duration::from_secs(30)).await;
    let module = c
        .upload_module(&wat::parse_str(countdown_wat(40_000_000)).unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(c.submit(spec(module)).await.unwrap());
    }
    // Wait until w1 is running something, then SIGKILL it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let w1_key = loop {
        let ws = c.workers().await.unwrap();
        if let Some(w) = ws.iter().find(|w| w.info.name == "w1" && w.running > 0) {
            break w.key;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "w1 never ran a task: {ws:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    w1.kill9();
    let mut retried = 0;
    for id in &ids {
        let info = tokio::time::timeout(Duration::from_secs(120), c.wait(*id, |_| {}))
            .await
            .expect("task finishes after the kill")
            .unwrap();
        assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        if info.attempt > 1 {
            retried += 1;
        }
    }
    assert!(retried > 0, "no task was requeued after killing w1");
    // A SIGKILL sends no close: the dispatcher learns of the death only by
    // the three-heartbeat rule, and says so for w1.
    let stderr = d.proc.stderr();
    let declared = format!("worker={}", w1_key.short());
    assert!(
        stderr.lines().any(|l| l.contains(&declared)
            && l.contains("worker missed 3 heartbeats; requeueing its tasks")),
        "no line declaring w1 ({declared}) dead after 3 missed heartbeats:\n{stderr}"
    );
    c.close().await;
    d.proc.terminate(Duration::from_secs(30));
    check_recorded_once(&sb.dir.path().join("d"), &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_and_restarted_keeps_every_acknowledged_task() {
    let sb = Sandbox::new();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let _w = start_worker(&sb, "w1", &d, 1);
    let ids = {
        let c = client(&d.profile).await;
        wait_workers(&c, 1, Duration::from_secs(30)).await;
        let module = c
            .upload_module(&wat::parse_str(countdown_wat(20_000_000)).unwrap())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for _ in 0..30 {
            // Each id came back acknowledged: it must survive the kill.
            ids.push(c.submit(spec(module)).await.unwrap());
        }
        ids
    };
    d.proc.kill9();
    let mut d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let c = client(&d.profile).await;
    for id in &ids {
        let info = c
            .status(*id)
            .await
            .expect("acknowledged task is still there");
        assert!(
            matches!(
                info.state,
                TaskState::Queued | TaskState::Running | TaskState::Done
            ),
            "{info:?}"
        );
    }
    // The worker reconnects by itself and the queue drains.
    for id in &ids {
        let info = tokio::time::timeout(Duration::from_secs(120), c.wait(*id, |_| {}))
            .await
            .expect("task finishes after the restart")
            .unwrap();
        assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    }
    c.close().await;
    d.proc.terminate(Duration::from_secs(30));
    check_recorded_once(&sb.dir.path().join("d"), &ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_worker_without_losing_its_running_task() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let mut w = start_worker(&sb, "w1", &d, 1);
    let c = client(&d.profile).await;
    wait_workers(&c, 1, Duration::from_secs(30)).await;
    // Long enough to span many heartbeat periods (200 ms each).
    let module = c
        .upload_module(&wat::parse_str(countdown_wat(1_500_000_000)).unwrap())
        .await
        .unwrap();
    let id = c.submit(spec(module)).await.unwrap();
    wait_running(&c, id, Duration::from_secs(30)).await;
    // Leased is not yet running on the worker: its assignment may still be
    // on the way (under a loaded suite it was, and the drain found nothing
    // to finish). The worker says when it runs it.
    w.wait_for_stderr("manifest verified; running", Duration::from_secs(30));
    let status = w.terminate(Duration::from_secs(120));
    assert!(status.success(), "worker exit {status:?}: {}", w.stderr());
    let info = c.result(id).await.unwrap();
    assert_eq!(
        info.status,
        Some(TaskStatus::Succeeded),
        "{info:?}\n{}",
        w.stderr()
    );
    assert_eq!(
        info.attempt, 1,
        "the drained task must not be requeued: {info:?}"
    );
    assert!(w.stderr().contains("draining"), "{}", w.stderr());
    c.close().await;
    d.proc.terminate(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_task_frees_its_slot() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let _w = start_worker(&sb, "w1", &d, 1);
    let c = client(&d.profile).await;
    wait_workers(&c, 1, Duration::from_secs(30)).await;
    let endless = c
        .upload_module(
            &wat::parse_str(
                r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let quick = c
        .upload_module(&wat::parse_str(TRIVIAL_WAT).unwrap())
        .await
        .unwrap();
    // The endless loop may run for an hour with fuel for longer (the
    // cluster's maxima): only a freed slot lets the next task run before.
    let mut endless_spec = spec(endless);
    endless_spec.limits.timeout_ms = 3_600_000;
    endless_spec.limits.fuel = 1_000_000_000_000;
    let stuck = c.submit(endless_spec).await.unwrap();
    wait_running(&c, stuck, Duration::from_secs(30)).await;
    let info = c.cancel(stuck).await.unwrap();
    assert_eq!(info.status, Some(TaskStatus::Cancelled));
    // The one slot is free again: the worker holds nothing, and the next
    // task runs there and succeeds (the deadline only guards a hang).
    let next = c.submit(spec(quick)).await.unwrap();
    let Ok(done) = tokio::time::timeout(Duration::from_secs(60), c.wait(next, |_| {})).await else {
        panic!("the next task never ran; workers: {:?}", c.workers().await);
    };
    let done = done.unwrap();
    assert_eq!(done.status, Some(TaskStatus::Succeeded), "{done:?}");
    assert_eq!(done.attempt, 1, "it ran on its first lease: {done:?}");
    let w = c.workers().await.unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].running, 0, "no lease left behind: {w:?}");
    let again = c.result(stuck).await.unwrap();
    assert_eq!(
        again.status,
        Some(TaskStatus::Cancelled),
        "recorded once, as cancelled"
    );
}
