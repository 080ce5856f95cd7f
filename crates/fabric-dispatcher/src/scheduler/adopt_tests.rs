//! A new leader takes over its predecessor's runs (`adopt.rs`): a written
//! lease stays with its worker, an unwritten first attempt is adopted, and
//! a worker that does not come back loses its runs.

use fabric_proto::wire::WorkerInfo;
use fabric_proto::{Sha256, TaskId, TaskKind, TaskRecord, TaskSpec, TaskState, TaskStatus};

use super::{AWAIT_MS, Change, Completion, SchedConfig, Scheduler, WorkerKey};

fn tid(n: u8) -> TaskId {
    TaskId::from_bytes([n; 16])
}

fn task(n: u8) -> TaskRecord {
    let kind = TaskKind::Wasm {
        module: Sha256::of(b"m"),
    };
    TaskRecord::queued(tid(n), TaskSpec::new(kind), u64::from(n), 0)
}

fn info() -> WorkerInfo {
    WorkerInfo {
        name: "w".to_owned(),
        slots: 4,
        memory_bytes: 1 << 30,
        labels: Vec::new(),
        wasm: true,
        commands: Vec::new(),
        running: Vec::new(),
    }
}

const W: WorkerKey = WorkerKey([7; 32]);

/// What the former leader's store holds: task 1 running attempt 2 on W
/// (written), task 2 queued without an attempt (its first may be running
/// unwritten on W), task 3 queued and never sent.
fn stored() -> Vec<TaskRecord> {
    let mut running = task(1);
    running.state = TaskState::Running;
    running.attempt = 2;
    running.worker = Some(W);
    vec![running, task(2), task(3)]
}

#[test]
fn a_new_leader_keeps_the_runs_its_workers_report() {
    let mut s = Scheduler::new(SchedConfig::default());
    let now = 1_000;
    let changes = s.take_over(stored(), &[W], now);
    assert!(
        changes.is_empty(),
        "nothing is lost at a take-over: {changes:?}"
    );
    // Placement waits for the awaited worker.
    assert!(s.place(now + 10).is_empty());
    let reg = s.add_worker(W, &info(), &[(tid(1), 2), (tid(2), 1)], now + 100);
    assert!(reg.stray.is_empty(), "both runs adopted: {reg:?}");
    assert!(reg.changes.is_empty(), "{reg:?}");
    // The adopted runs finish as the attempts they are.
    assert!(matches!(
        s.complete(&tid(1), 2, &W, TaskStatus::Succeeded, now + 200),
        Completion::Final(r) if r.attempt == 2
    ));
    assert!(matches!(
        s.complete(&tid(2), 1, &W, TaskStatus::Succeeded, now + 200),
        Completion::Final(r) if r.attempt == 1
    ));
    // The task never sent goes out now, once, as attempt 2 (1 skipped).
    let placed = s.place(now + 300);
    assert_eq!(placed.len(), 1, "{placed:?}");
    assert_eq!((placed[0].id, placed[0].attempt), (tid(3), 2));
}

#[test]
fn a_first_attempt_placed_again_is_no_longer_adopted() {
    let mut s = Scheduler::new(SchedConfig::default());
    let other = WorkerKey([8; 32]);
    s.take_over(vec![task(2)], &[W], 0);
    s.add_worker(other, &info(), &[], 10);
    // The hold ends after AWAIT_MS: task 2 is placed on the other worker.
    let placed = s.place(AWAIT_MS + 1);
    assert_eq!((placed[0].id, placed[0].attempt), (tid(2), 2));
    // W reports attempt 1 late: stray (cancelled), the lease stays.
    let reg = s.add_worker(W, &info(), &[(tid(2), 1)], AWAIT_MS + 2);
    assert_eq!(reg.stray, vec![(tid(2), 1)]);
    assert!(s.holds_lease(&tid(2), 2, &other));
}

#[test]
fn a_worker_that_does_not_come_back_loses_its_runs_after_the_wait() {
    let cfg = SchedConfig::default();
    let limit = cfg.heartbeat_ms * u64::from(cfg.missed_heartbeats);
    let mut s = Scheduler::new(cfg);
    s.take_over(stored(), &[W], 0);
    assert!(s.tick(AWAIT_MS).changes.is_empty(), "still awaited");
    let tick = s.tick(AWAIT_MS + limit + 1);
    assert_eq!(tick.dead, vec![W]);
    assert!(
        matches!(&tick.changes[..], [Change::Lost(r, _)] if r.id == tid(1)),
        "{:?}",
        tick.changes
    );
}

#[test]
fn a_restart_still_loses_every_run() {
    let mut s = Scheduler::new(SchedConfig::default());
    let changes = s.restore(stored(), 0);
    assert!(
        matches!(&changes[..], [Change::Lost(r, _)] if r.id == tid(1)),
        "{changes:?}"
    );
    let reg = s.add_worker(W, &info(), &[(tid(2), 1)], 10);
    assert_eq!(reg.stray, vec![(tid(2), 1)], "no adoption after a restart");
}
