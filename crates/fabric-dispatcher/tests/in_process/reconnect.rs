//! A worker whose connection breaks mid-run and comes back: the dispatcher
//! adopts the run it reports, and its result arrives as a late report.

use std::time::Duration;

use fabric_proto::{Limits, TaskState, TaskStatus};

use crate::harness::{Cluster, SPIN_WAT, eventually, fast_heartbeats};
use crate::relay::Relay;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_survives_its_workers_reconnect_and_is_recorded_from_a_late_report() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let relay = Relay::start(c.dispatcher.local_addr()).await;
    let w = c
        .add_worker_with(1, |cfg| {
            cfg.dispatcher = Some(relay.addr);
            // Loses the connection soon after the relay is cut.
            cfg.net.idle_timeout = Duration::from_millis(800);
            cfg.net.keep_alive = Duration::from_millis(200);
        })
        .await;
    let spin = c.module(SPIN_WAT).await;
    let limits = Limits {
        timeout_ms: 6_000,
        fuel: 1_000_000_000_000,
        ..Limits::default()
    };
    let id = c.submit(spin, limits, 0).await;
    c.wait_until(id, "running", |i| i.state == TaskState::Running)
        .await;
    // Leased is not yet running: give the worker time to fetch the module
    // and start the guest before its connection breaks.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let registered_at = registrations(&c, &w.key).await;
    relay.cut(true);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    relay.cut(false);
    // It registers afresh on a new connection, saying it still runs the
    // attempt; the attempt keeps its lease.
    eventually("the worker registers again", || async {
        registrations(&c, &w.key).await > registered_at
    })
    .await;
    let adopted = c
        .dispatcher
        .store()
        .recent_events(10_000)
        .expect("events")
        .into_iter()
        .rev()
        .find(|e| e.kind == fabric_store::EventKind::WorkerRegistered)
        .expect("registered");
    assert!(
        adopted.detail.ends_with("adopted 1 runs, cancelled 0"),
        "{adopted:?}"
    );
    let running = c.client.status(id).await.expect("status");
    assert_eq!(running.state, TaskState::Running, "{running:?}");
    assert_eq!(running.attempt, 1, "adopted, not run again: {running:?}");
    // The guest times out on its worker; the report that the broken stream
    // could not carry arrives late and is the one recorded.
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::TimedOut), "{done:?}");
    assert_eq!(done.attempt, 1, "{done:?}");
    assert_eq!(done.worker, Some(w.key));
    w.stop().await;
}

/// How many times the dispatcher's event log saw `key` register.
async fn registrations(c: &Cluster, key: &fabric_proto::WorkerKey) -> usize {
    let key = key.to_string();
    c.dispatcher
        .store()
        .recent_events(10_000)
        .expect("events")
        .iter()
        .filter(|e| {
            e.kind == fabric_store::EventKind::WorkerRegistered && e.detail.starts_with(&key)
        })
        .count()
}
