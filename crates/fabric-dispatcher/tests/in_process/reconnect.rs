//! A worker whose connection breaks mid-run and comes back: the dispatcher
//! adopts the run it reports, and its result arrives as a late report.

use std::time::Duration;

use fabric_proto::{GuestEvent, Limits, TaskState, TaskStatus};
use fabric_worker::{Notice, Notices};
use tokio::sync::mpsc;

use crate::harness::{Cluster, PATIENCE, eventually, fast_heartbeats};
use crate::relay::Relay;

/// Reports progress once, then spins until a limit stops it: its progress
/// reaching a waiter says the guest runs on its worker.
const PROGRESS_THEN_SPIN_WAT: &str = r#"(module
  (import "fabric" "progress" (func $progress (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $progress (i64.const 1) (i64.const 2))
    (loop $l (br $l))))"#;

/// Waits for the first notice `pick` accepts; fails with the ones seen.
async fn notice<T>(
    rx: &mut mpsc::Receiver<Notice>,
    what: &str,
    pick: impl Fn(&Notice) -> Option<T>,
) -> T {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(n) = rx.recv().await {
            if let Some(v) = pick(&n) {
                return Some(v);
            }
            seen.push(n);
        }
        None
    })
    .await;
    match found {
        Ok(Some(v)) => v,
        Ok(None) => panic!("{what}: the worker's notices ended; seen {seen:?}"),
        Err(_) => panic!("{what}: not within {PATIENCE:?}; seen {seen:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_survives_its_workers_reconnect_and_is_recorded_from_a_late_report() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let relay = Relay::start(c.dispatcher.local_addr()).await;
    let (notices, mut heard) = mpsc::channel(64);
    let w = c
        .add_worker_with(1, |cfg| {
            cfg.dispatcher = Some(relay.addr);
            cfg.notices = Notices::to(notices);
            // Loses the connection soon after the relay is cut.
            cfg.net.idle_timeout = Duration::from_millis(800);
            cfg.net.keep_alive = Duration::from_millis(200);
        })
        .await;
    let spin = c.module(PROGRESS_THEN_SPIN_WAT).await;
    let limits = Limits {
        timeout_ms: 6_000,
        fuel: 1_000_000_000_000,
        ..Limits::default()
    };
    let id = c.submit(spin, limits, 0).await;
    // Leased is not yet running: the guest's own progress, relayed to a
    // waiter, says the worker fetched the module and started it.
    let (started, mut progressed) = mpsc::channel(1);
    let waiting = c.client.wait(id, move |ev| {
        if matches!(ev, GuestEvent::Progress { .. }) {
            let _ = started.try_send(());
        }
    });
    tokio::select! {
        done = waiting => panic!("the task ended before its guest reported progress: {done:?}"),
        got = tokio::time::timeout(PATIENCE, progressed.recv()) => {
            assert!(matches!(got, Ok(Some(()))), "no progress within {PATIENCE:?}");
        }
    }
    let registered_at = registrations(&c, &w.key).await;
    relay.cut(true);
    // Uncut once the worker says it lost the dispatcher and tries again.
    notice(&mut heard, "the worker notices the cut", |n| {
        matches!(n, Notice::Unreachable { .. }).then_some(())
    })
    .await;
    relay.cut(false);
    let adopted = notice(&mut heard, "the worker joins again", |n| match n {
        Notice::Joined { adopted, .. } => Some(*adopted),
        _ => None,
    })
    .await;
    assert_eq!(adopted, 1, "the worker kept its run");
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
