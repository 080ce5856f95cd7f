//! Unit tests for lease deadlines, refusals, restarts, reconnects,
//! unplaceable tasks and undone changes.

use fabric_proto::wire::WorkerInfo;
use fabric_proto::{Limits, Priority, Sha256, TaskId, TaskRecord, TaskSpec, TaskState, TaskStatus};

use super::{Change, Completion, SchedConfig, Scheduler, WorkerKey};

const GIB: u64 = 1 << 30;

fn tid(n: u64) -> TaskId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    TaskId::from_bytes(b)
}

fn key(i: u8) -> WorkerKey {
    WorkerKey([i + 1; 32])
}

fn task(seq: u64, memory_bytes: u64, timeout_ms: u64) -> TaskRecord {
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.priority = Priority::Normal;
    spec.limits = Limits {
        memory_bytes,
        timeout_ms,
        ..Limits::default()
    };
    TaskRecord::queued(tid(seq), spec, seq, 0)
}

fn worker(slots: u32, memory_bytes: u64) -> WorkerInfo {
    WorkerInfo {
        name: "w".into(),
        slots,
        memory_bytes,
        labels: Vec::new(),
        wasm: true,
        commands: Vec::new(),
        running: Vec::new(),
    }
}

fn sched() -> Scheduler {
    Scheduler::new(SchedConfig {
        heartbeat_ms: 1_000_000,
        ..SchedConfig::default()
    })
}

#[test]
fn a_lease_past_its_timeout_plus_grace_is_lost_and_requeued() {
    let mut s = sched();
    let grace = s.config().lease_grace_ms;
    s.add_worker(key(0), &worker(1, GIB), &[], 0);
    s.submit(task(1, 1 << 20, 2_000));
    let placed = s.place(100);
    assert_eq!(placed.len(), 1);
    let deadline = 100 + 2_000 + grace;
    assert_eq!(s.lease_deadline(&tid(1)), Some(deadline));
    // Heartbeats keep the worker, not the lease.
    assert!(s.heartbeat(&key(0), 1, deadline - 1));
    assert!(s.tick(deadline - 1).changes.is_empty());
    let tick = s.tick(deadline);
    assert!(tick.dead.is_empty(), "the worker itself is alive");
    let [Change::Lost(rec, why)] = &tick.changes[..] else {
        panic!("expected one lost lease, got {:?}", tick.changes);
    };
    assert!(why.contains("timeout"), "{why}");
    assert_eq!(
        (rec.state, rec.lost, rec.failures),
        (TaskState::Queued, 1, 0)
    );
    assert_eq!(s.lease_deadline(&tid(1)), None);
    // The late report of the expired attempt is stale; the next attempt runs.
    assert_eq!(
        s.complete(&tid(1), 1, &key(0), TaskStatus::Succeeded, deadline + 1),
        Completion::Stale
    );
    assert_eq!(s.place(deadline + 1)[0].attempt, 2);
}

#[test]
fn refusals_wait_a_doubling_backoff_use_no_budget_and_end_after_the_cap() {
    let mut s = sched();
    let base = s.config().refusal_backoff_ms;
    let max = s.config().max_refused;
    s.add_worker(key(0), &worker(1, GIB), &[], 0);
    let mut t = task(1, 1 << 20, 1_000);
    t.spec.retries = 0;
    s.submit(t);
    let mut now = 0;
    for n in 1..max {
        let placed = s.place(now);
        assert_eq!(placed.len(), 1, "refusal {n}: placed again after its wait");
        let attempt = placed[0].attempt;
        let Some(Change::Refused(rec, _)) = s.refuse(&tid(1), attempt, &key(0), "draining", now)
        else {
            panic!("refusal {n} requeues");
        };
        let wait = (base << (n - 1)).min(s.config().backoff_max_ms);
        assert_eq!(rec.not_before_ms, now + wait, "refusal {n}");
        assert_eq!((rec.refused, rec.failures, rec.lost), (n, 0, 0));
        // Not offered again before the wait is over.
        assert!(s.place(now + wait - 1).is_empty());
        let why = s.why_waiting(&tid(1), now).unwrap();
        assert!(why.contains("refused"), "{why}");
        now += wait;
        assert!(s.tick(now).changes.is_empty());
    }
    let attempt = s.place(now)[0].attempt;
    let Some(Change::Give(rec, msg)) = s.refuse(&tid(1), attempt, &key(0), "draining", now) else {
        panic!("the last refusal gives the task up");
    };
    assert!(msg.contains("refusals"), "{msg}");
    assert_eq!(rec.status, Some(TaskStatus::Failed));
    // Time spent before giving up is far from milliseconds.
    assert!(now > 60_000, "gave up after {now} ms");
}

#[test]
fn a_completed_attempt_resets_the_refusal_count() {
    let mut s = sched();
    s.add_worker(key(0), &worker(1, GIB), &[], 0);
    let mut t = task(1, 1 << 20, 1_000);
    t.spec.retries = 1;
    s.submit(t);
    let a = s.place(0)[0].attempt;
    s.refuse(&tid(1), a, &key(0), "busy", 0);
    s.tick(10_000);
    let a = s.place(10_000)[0].attempt;
    let Completion::Retry(rec) = s.complete(&tid(1), a, &key(0), TaskStatus::Failed, 10_001) else {
        panic!("retry");
    };
    assert_eq!(rec.refused, 0);
}

#[test]
fn a_restart_counts_the_running_attempt_as_lost_and_gives_up_a_task_that_keeps_crashing_it() {
    let cfg = SchedConfig::default();
    let max_lost = cfg.max_lost;
    let mut rec = task(1, 1 << 20, 1_000);
    for crash in 1..=max_lost {
        // The record as the store holds it: leased (written before the
        // manifest went out), attempt as high as ever.
        rec.state = TaskState::Running;
        rec.attempt += 1;
        rec.worker = Some(key(0));
        let mut s = Scheduler::new(cfg.clone());
        let changes = s.restore(vec![rec.clone()], 5);
        match &changes[..] {
            [Change::Lost(r, why)] if crash < max_lost => {
                assert!(why.contains("restarted"), "{why}");
                assert_eq!(
                    (r.lost, r.attempt, r.state),
                    (crash, rec.attempt, TaskState::Queued)
                );
                s.add_worker(key(0), &worker(1, GIB), &[], 5);
                let next = s.place(5);
                assert_eq!(
                    next[0].attempt,
                    rec.attempt + 1,
                    "a higher attempt after the restart"
                );
                rec = r.clone();
            }
            [Change::Give(r, msg)] if crash == max_lost => {
                assert!(msg.contains("lost"), "{msg}");
                assert!(r.dead_letter);
            }
            other => panic!("crash {crash}: {other:?}"),
        }
    }
}

#[test]
fn a_reconnecting_worker_keeps_what_it_reports_loses_the_rest_and_cancels_strays() {
    let mut s = sched();
    s.add_worker(key(0), &worker(3, GIB), &[], 0);
    for seq in 1..=3 {
        s.submit(task(seq, 1 << 20, 10_000));
    }
    let placed = s.place(0);
    assert_eq!(placed.len(), 3);
    // It still runs tasks 1 and 2, not 3, plus a run of a task it holds no
    // lease for (an old attempt).
    let running = vec![(tid(1), 1), (tid(2), 1), (tid(9), 4)];
    let reg = s.add_worker(key(0), &worker(3, GIB), &running, 10);
    assert_eq!(reg.stray, vec![(tid(9), 4)]);
    let [Change::Lost(rec, _)] = &reg.changes[..] else {
        panic!("{:?}", reg.changes);
    };
    assert_eq!(rec.id, tid(3));
    let mut leases: Vec<_> = s.leases().into_iter().map(|l| l.0).collect();
    leases.sort();
    assert_eq!(leases, vec![tid(1), tid(2)]);
    // Slots it does not have are not offered: 3 slots, 2 leases, 1 stray.
    assert!(s.place(10).is_empty(), "the stray still holds a slot");
    // Once its heartbeat says only the two leased runs are left, the slot
    // is free again.
    assert!(s.heartbeat(&key(0), 2, 20));
    let again = s.place(20);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, tid(3));
}

#[test]
fn a_drain_sticks_across_a_re_registration() {
    let mut s = sched();
    s.add_worker(key(0), &worker(2, GIB), &[], 0);
    s.drain_worker(&key(0));
    s.add_worker(key(0), &worker(2, GIB), &[], 1);
    assert!(s.is_draining(&key(0)));
    s.submit(task(1, 1 << 20, 1_000));
    assert!(s.place(2).is_empty());
    assert_eq!(
        s.why_waiting(&tid(1), 2).as_deref(),
        Some("every worker that could run it is draining or has lost its connection")
    );
}

#[test]
fn a_task_no_worker_can_run_says_why_and_waits_aside_until_one_registers() {
    let mut s = sched();
    s.submit(task(1, 2 * GIB, 1_000));
    assert_eq!(
        s.why_waiting(&tid(1), 0).as_deref(),
        Some("no worker is registered")
    );
    s.add_worker(key(0), &worker(4, 512 << 20), &[], 0);
    assert_eq!(
        s.unmet_requirement(s.task(&tid(1)).unwrap()).as_deref(),
        Some("no worker offers 2 GiB of memory; the largest offers 512 MiB")
    );
    assert!(s.place(0).is_empty());
    // Parked: later placements do not walk it, and it is still counted.
    assert_eq!(s.queued(), 1);
    s.submit(task(2, 1 << 20, 1_000));
    assert_eq!(s.place(1).len(), 1);
    // A worker big enough registers: it is placed.
    s.add_worker(key(1), &worker(1, 4 * GIB), &[], 2);
    let placed = s.place(2);
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].id, tid(1));
}

#[test]
fn reinstate_undoes_a_completion_and_a_cancel_whose_write_failed() {
    let mut s = sched();
    s.add_worker(key(0), &worker(1, GIB), &[], 0);
    s.submit(task(1, 1 << 20, 1_000));
    s.submit(task(2, 1 << 20, 1_000));
    let placed = s.place(0);
    let before = s.task(&tid(1)).cloned().unwrap();
    assert!(matches!(
        s.complete(
            &tid(1),
            placed[0].attempt,
            &key(0),
            TaskStatus::Succeeded,
            1
        ),
        Completion::Final(_)
    ));
    assert_eq!(s.reinstate(before.clone(), 2), None);
    assert_eq!(s.task(&tid(1)), Some(&before));
    assert_eq!(s.leases(), vec![(tid(1), before.attempt, key(0))]);
    assert!(s.place(2).is_empty(), "the slot is held again");
    // A cancel of a queued task, undone.
    let queued = s.task(&tid(2)).cloned().unwrap();
    s.cancel(&tid(2), 3).unwrap();
    assert_eq!(s.reinstate(queued.clone(), 3), None);
    assert_eq!(s.task(&tid(2)), Some(&queued));
    assert_eq!(s.queued(), 1);
    // Running on a worker that went away meanwhile: that attempt is lost.
    s.remove_worker(&key(0), 4);
    let Some(Change::Lost(..)) = s.reinstate(before, 5) else {
        panic!("no worker to hold the lease");
    };
}

#[test]
fn a_lease_that_could_not_be_recorded_goes_back_and_counts_nothing() {
    let mut s = sched();
    s.add_worker(key(0), &worker(1, GIB), &[], 0);
    s.submit(task(1, 1 << 20, 1_000));
    let placed = s.place(10);
    let attempt = placed[0].attempt;
    assert!(s.unlease(&tid(1), attempt, &key(0), 1_000, 20));
    let back = s.task(&tid(1)).cloned().unwrap();
    assert_eq!(back.state, TaskState::Queued);
    assert_eq!(
        back.attempt, attempt,
        "kept: the write may still reach the disk"
    );
    assert_eq!((back.lost, back.refused, back.failures), (0, 0, 0));
    assert!(s.leases().is_empty(), "the slot is free");
    s.tick(500);
    assert!(s.place(500).is_empty(), "it waits the delay");
    s.tick(1_020);
    let again = s.place(1_020);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, attempt + 1);
    assert!(
        !Scheduler::may_send_unwritten(&again[0]),
        "a second lease is flushed before it goes out"
    );
    // A stale lease is not given back.
    assert!(!s.unlease(&tid(1), attempt, &key(0), 1_000, 1_030));
}

#[test]
fn a_disconnected_worker_keeps_its_leases_until_it_returns_or_is_declared_dead() {
    let mut s = Scheduler::new(SchedConfig {
        heartbeat_ms: 1_000,
        ..SchedConfig::default()
    });
    s.add_worker(key(0), &worker(2, GIB), &[], 0);
    s.submit(task(1, 1 << 20, 60_000));
    let placed = s.place(0);
    let attempt = placed[0].attempt;
    s.disconnect_worker(&key(0));
    s.submit(task(2, 1 << 20, 60_000));
    assert!(s.place(10).is_empty(), "nothing new goes to it");
    assert_eq!(s.leases(), vec![(tid(1), attempt, key(0))]);
    // It comes back reporting the run: adopted, and placeable again.
    let back = s.add_worker(key(0), &worker(2, GIB), &[(tid(1), attempt)], 20);
    assert!(back.stray.is_empty() && back.changes.is_empty());
    assert_eq!(s.leases(), vec![(tid(1), attempt, key(0))]);
    assert_eq!(s.place(30).len(), 1, "the second task goes to it");
    // Gone for good: declared dead once its heartbeats are overdue, and
    // both leases are lost and requeued.
    s.disconnect_worker(&key(0));
    let limit = 1_000 * u64::from(s.config().missed_heartbeats);
    assert!(s.tick(20 + limit).dead.is_empty());
    let tick = s.tick(21 + limit);
    assert_eq!(tick.dead, vec![key(0)]);
    assert_eq!(tick.changes.len(), 2);
    assert!(s.leases().is_empty());
}

#[test]
fn only_first_leases_go_out_before_their_flush_and_a_restart_skips_that_number() {
    let mut s = sched();
    let never_ran = task(1, 1 << 20, 1_000);
    let mut ran_before = task(2, 1 << 20, 1_000);
    ran_before.attempt = 2;
    s.restore(vec![never_ran, ran_before], 0);
    s.submit(task(3, 1 << 20, 1_000));
    s.add_worker(key(0), &worker(3, GIB), &[], 0);
    let placed = s.place(1);
    let attempt = |n| placed.iter().find(|r| r.id == tid(n)).unwrap().attempt;
    assert_eq!(
        attempt(1),
        2,
        "attempt 1 may have gone out before the crash"
    );
    assert_eq!(
        attempt(2),
        3,
        "its attempt 2 was on disk before it went out"
    );
    assert_eq!(attempt(3), 1);
    let early = |n| Scheduler::may_send_unwritten(placed.iter().find(|r| r.id == tid(n)).unwrap());
    assert!(early(3), "a first attempt goes out at once");
    assert!(!early(1) && !early(2), "later ones wait for their flush");
}

#[test]
fn each_attempt_is_remembered_with_its_worker_and_how_it_ended() {
    let mut s = sched();
    s.add_worker(key(0), &worker(1, GIB), &[], 0);
    s.submit(task(1, 1 << 20, 1_000));
    let first = s.place(10)[0].attempt;
    s.abandon(&tid(1), first, &key(0), "stream broke", 20)
        .unwrap();
    let second = s.place(30)[0].attempt;
    let Completion::Final(rec) = s.complete(&tid(1), second, &key(0), TaskStatus::TimedOut, 50)
    else {
        panic!("final");
    };
    let seen: Vec<_> = rec
        .history
        .iter()
        .map(|a| {
            (
                a.attempt,
                a.worker,
                a.started_ms,
                a.ended_ms,
                a.outcome.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                first,
                key(0),
                10,
                Some(20),
                Some("lost: stream broke".to_owned())
            ),
            (second, key(0), 30, Some(50), Some("timed_out".to_owned())),
        ]
    );
}
