//! Unit and property tests for the scheduler state machine.

use std::collections::{BTreeSet, HashMap};

use fabric_proto::wire::WorkerInfo;
use fabric_proto::{
    Limits, Priority, Sha256, TaskId, TaskKind, TaskRecord, TaskSpec, TaskState, TaskStatus,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{Change, Completion, SchedConfig, Scheduler, WorkerKey};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A deterministic task id (ids only break ties; `seq` orders the queue).
fn tid(n: u64) -> TaskId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    TaskId::from_bytes(b)
}

fn key(idx: u8) -> WorkerKey {
    WorkerKey([idx + 1; 32])
}

fn spec(kind: TaskKind, priority: Priority, memory_bytes: u64, retries: u32) -> TaskSpec {
    TaskSpec {
        limits: Limits {
            memory_bytes,
            ..Limits::default()
        },
        priority,
        retries,
        ..TaskSpec::new(kind)
    }
}

/// A record as the dispatcher builds it on admission.
fn record(seq: u64, spec: TaskSpec, now: u64) -> TaskRecord {
    TaskRecord::queued(tid(seq), spec, seq, now)
}

fn wasm_kind() -> TaskKind {
    TaskKind::Wasm {
        module: Sha256::of(b"m"),
    }
}

fn wasm_task(seq: u64, priority: Priority, memory_bytes: u64, retries: u32) -> TaskRecord {
    record(seq, spec(wasm_kind(), priority, memory_bytes, retries), 0)
}

fn command_task(seq: u64, program: &str) -> TaskRecord {
    let kind = TaskKind::command(program);
    record(seq, spec(kind, Priority::Normal, 16 * MIB, 0), 0)
}

fn worker_info(slots: u32, memory_bytes: u64, wasm: bool, commands: &[&str]) -> WorkerInfo {
    WorkerInfo {
        name: "w".to_owned(),
        slots,
        memory_bytes,
        labels: Vec::new(),
        wasm,
        commands: commands.iter().map(|c| (*c).to_owned()).collect(),
        running: Vec::new(),
    }
}

fn wasm_worker(slots: u32) -> WorkerInfo {
    worker_info(slots, GIB, true, &[])
}

fn sched() -> Scheduler {
    Scheduler::new(SchedConfig::default())
}

fn seqs(recs: &[TaskRecord]) -> Vec<u64> {
    recs.iter().map(|r| r.seq).collect()
}

fn worker_hex(k: &WorkerKey) -> Option<WorkerKey> {
    Some(*k)
}

fn running_on(s: &Scheduler, k: &WorkerKey) -> u32 {
    s.workers()
        .find(|(wk, ..)| *wk == k)
        .map(|(_, _, running, _)| running)
        .expect("worker is registered")
}

#[test]
fn priority_first_then_fifo() {
    let prios = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Normal,
        Priority::High,
        Priority::Low,
    ];
    let expected = vec![3, 5, 2, 4, 1, 6];

    // All at once on a wide worker: place() returns them in queue order.
    let mut s = sched();
    for (i, p) in prios.iter().enumerate() {
        s.submit(wasm_task(i as u64 + 1, *p, MIB, 0));
    }
    s.add_worker(key(0), &wasm_worker(8), &[], 0);
    assert_eq!(seqs(&s.place(0)), expected);

    // One at a time on a single slot: the same order.
    let mut s = sched();
    for (i, p) in prios.iter().enumerate() {
        s.submit(wasm_task(i as u64 + 1, *p, MIB, 0));
    }
    s.add_worker(key(0), &wasm_worker(1), &[], 0);
    let mut order = Vec::new();
    loop {
        let placed = s.place(0);
        assert!(placed.len() <= 1, "one slot, one lease: {placed:?}");
        let Some(rec) = placed.into_iter().next() else {
            break;
        };
        assert_eq!(s.place(0), Vec::new(), "the only slot is taken");
        order.push(rec.seq);
        let done = s.complete(&rec.id, rec.attempt, &key(0), TaskStatus::Succeeded, 0);
        assert!(matches!(done, Completion::Final(_)), "{done:?}");
    }
    assert_eq!(order, expected);
    assert_eq!(s.live(), 0);
}

#[test]
fn missed_heartbeats_requeue_the_lease_with_a_higher_attempt() {
    let mut s = sched();
    s.submit(wasm_task(1, Priority::Normal, MIB, 0));
    s.add_worker(key(0), &wasm_worker(1), &[], 0);
    let first = s.place(0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].attempt, 1);
    assert_eq!(first[0].worker, worker_hex(&key(0)));

    // A heartbeat keeps the worker; silence up to exactly 3 periods is fine.
    assert!(s.heartbeat(&key(0), 0, 1_000));
    assert_eq!(s.tick(4_000).changes, Vec::new());
    assert!(s.has_worker(&key(0)));

    // One millisecond more and the worker is gone, its task requeued.
    let tick = s.tick(4_001);
    assert_eq!(tick.dead, vec![key(0)], "declared dead");
    let changes = tick.changes;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let Change::Lost(rec, _) = &changes[0] else {
        panic!("expected a requeue, got {changes:?}");
    };
    assert_eq!(rec.id, tid(1));
    assert_eq!(rec.state, TaskState::Queued);
    assert_eq!(rec.worker, None);
    assert_eq!(rec.lost, 1);
    assert_eq!(
        rec.failures, 0,
        "a lost attempt does not use the retry budget"
    );
    assert_eq!(s.task(&tid(1)), Some(rec));
    assert!(!s.has_worker(&key(0)));
    assert!(!s.heartbeat(&key(0), 0, 4_001));
    assert!(s.leases().is_empty());

    // The next worker gets a later attempt; the old one's report is stale.
    s.add_worker(key(1), &wasm_worker(1), &[], 4_001);
    let second = s.place(4_001);
    assert_eq!(second.len(), 1);
    assert!(second[0].attempt > first[0].attempt);
    assert_eq!(second[0].worker, worker_hex(&key(1)));
    assert_eq!(
        s.complete(&tid(1), 1, &key(0), TaskStatus::Succeeded, 4_002),
        Completion::Stale
    );
    assert!(matches!(
        s.complete(&tid(1), 2, &key(1), TaskStatus::Succeeded, 4_002),
        Completion::Final(_)
    ));
}

#[test]
fn stale_completions_are_dropped() {
    let mut s = sched();
    s.submit(wasm_task(1, Priority::Normal, MIB, 3));
    s.add_worker(key(0), &wasm_worker(1), &[], 0);
    s.add_worker(key(1), &wasm_worker(1), &[], 0);
    let placed = s.place(0);
    assert_eq!(placed.len(), 1);
    let wk = key(0);
    assert_eq!(
        placed[0].worker,
        worker_hex(&wk),
        "ties go to the lower key"
    );
    let other = key(1);
    let before = s.task(&tid(1)).cloned();

    for (attempt, w) in [(0, &wk), (2, &wk), (1, &other)] {
        assert_eq!(
            s.complete(&tid(1), attempt, w, TaskStatus::Succeeded, 1),
            Completion::Stale,
            "attempt {attempt}"
        );
    }
    assert_eq!(
        s.complete(&tid(99), 1, &wk, TaskStatus::Succeeded, 1),
        Completion::Stale
    );
    assert_eq!(
        s.task(&tid(1)).cloned(),
        before,
        "stale reports change nothing"
    );
    assert_eq!(s.leases(), vec![(tid(1), 1, wk)]);

    let Completion::Final(rec) = s.complete(&tid(1), 1, &wk, TaskStatus::Succeeded, 2) else {
        panic!("the lease holder's report is final");
    };
    assert_eq!(rec.state, TaskState::Done);
    assert_eq!(rec.status, Some(TaskStatus::Succeeded));
    assert!(!rec.dead_letter);
    // A duplicate of the report that finished the task is stale too.
    assert_eq!(
        s.complete(&tid(1), 1, &wk, TaskStatus::Succeeded, 3),
        Completion::Stale
    );
    assert_eq!(s.live(), 0);
}

#[test]
fn failed_attempts_retry_after_a_doubling_backoff() {
    let mut s = sched();
    let base = s.config().backoff_base_ms;
    s.submit(wasm_task(1, Priority::Normal, MIB, 2));
    s.add_worker(key(0), &wasm_worker(1), &[], 0);
    let wk = key(0);

    let mut now = 100;
    let mut delay = base;
    for attempt in 1..=2 {
        let placed = s.place(now);
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].attempt, attempt);
        now += 100;
        let Completion::Retry(rec) = s.complete(&tid(1), attempt, &wk, TaskStatus::Failed, now)
        else {
            panic!("attempt {attempt} should be retried");
        };
        assert_eq!(rec.state, TaskState::Queued);
        assert_eq!(rec.failures, attempt);
        assert_eq!(rec.not_before_ms, now + delay);
        assert_eq!(rec.worker, None);
        assert_eq!(s.queued(), 1);
        assert_eq!(running_on(&s, &wk), 0);

        // Not before the backoff has run out, even with a free worker.
        assert!(s.place(now).is_empty());
        let due = rec.not_before_ms;
        assert!(s.heartbeat(&wk, 0, due - 1));
        assert_eq!(s.tick(due - 1).changes, Vec::new());
        assert!(s.place(due - 1).is_empty());
        assert_eq!(s.task(&tid(1)).map(|r| r.state), Some(TaskState::Queued));

        // Once tick() passes it, the task is placeable again.
        assert_eq!(s.tick(due).changes, Vec::new());
        assert_eq!(s.task(&tid(1)).map(|r| r.not_before_ms), Some(0));
        now = due;
        delay *= 2;
    }
    let placed = s.place(now);
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].attempt, 3);
    let Completion::Final(rec) = s.complete(&tid(1), 3, &wk, TaskStatus::Failed, now + 1) else {
        panic!("retries used up: the failure is final");
    };
    assert_eq!(rec.failures, 2);
    assert!(rec.dead_letter);
    assert_eq!(s.live(), 0);
}

#[test]
fn exhausted_retries_are_final_and_dead_lettered() {
    let mut s = sched();
    s.add_worker(key(0), &wasm_worker(4), &[], 0);
    s.submit(wasm_task(1, Priority::Normal, MIB, 0));
    s.submit(wasm_task(2, Priority::Normal, MIB, 0));
    s.submit(wasm_task(3, Priority::Normal, MIB, 0));
    assert_eq!(s.place(0).len(), 3);

    let cases = [
        (1, TaskStatus::Failed, true),
        (2, TaskStatus::TimedOut, true),
        (3, TaskStatus::Succeeded, false),
    ];
    for (seq, status, dead) in cases {
        let Completion::Final(rec) = s.complete(&tid(seq), 1, &key(0), status, 5) else {
            panic!("no retries: final");
        };
        assert_eq!(rec.state, TaskState::Done);
        assert_eq!(rec.status, Some(status));
        assert_eq!(rec.dead_letter, dead, "{status}");
        // The final record names the worker that produced the result.
        assert_eq!(rec.worker, Some(key(0)));
        assert_eq!(rec.updated_ms, 5);
    }
    assert_eq!(s.live(), 0);
    assert_eq!(running_on(&s, &key(0)), 0);
}

#[test]
fn a_task_lost_too_often_is_given_up() {
    let mut s = sched();
    let max_lost = s.config().max_lost;
    s.submit(wasm_task(1, Priority::Normal, MIB, 0));
    for i in 1..=max_lost {
        s.add_worker(key(0), &wasm_worker(1), &[], 0);
        let placed = s.place(0);
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].attempt, i);
        let changes = s.remove_worker(&key(0), 0);
        assert_eq!(changes.len(), 1);
        match &changes[0] {
            Change::Lost(rec, _) if i < max_lost => {
                assert_eq!(rec.lost, i);
                assert_eq!(rec.state, TaskState::Queued);
            }
            Change::Give(rec, msg) if i == max_lost => {
                assert_eq!(rec.state, TaskState::Done);
                assert_eq!(rec.status, Some(TaskStatus::Failed));
                assert!(rec.dead_letter);
                assert!(msg.contains("lost"), "{msg}");
            }
            other => panic!("loss {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(s.live(), 0);
    assert!(s.remove_worker(&key(0), 0).is_empty());
}

#[test]
fn cancel_queued_delayed_and_running_tasks() {
    let mut s = sched();
    s.submit(wasm_task(1, Priority::High, MIB, 1));
    s.submit(wasm_task(2, Priority::Normal, MIB, 0));
    s.submit(wasm_task(3, Priority::Low, MIB, 0));
    s.add_worker(key(0), &wasm_worker(1), &[], 0);
    let wk = key(0);

    // Queued: gone from the queue, nobody to tell.
    let (rec, running) = s.cancel(&tid(3), 1).expect("task 3 is live");
    assert_eq!(rec.state, TaskState::Cancelled);
    assert_eq!(rec.status, Some(TaskStatus::Cancelled));
    assert_eq!(running, None);
    assert_eq!(s.queued(), 2);
    assert_eq!(s.cancel(&tid(3), 1), None, "cancelling twice finds nothing");

    // Running: the worker and attempt are returned and the slot is freed.
    let placed = s.place(1);
    assert_eq!(seqs(&placed), vec![1]);
    let (rec, running) = s.cancel(&tid(1), 2).expect("task 1 is live");
    assert_eq!(rec.state, TaskState::Cancelled);
    assert_eq!(rec.worker, None);
    assert_eq!(running, Some((wk, 1)));
    assert!(s.leases().is_empty());
    assert_eq!(running_on(&s, &wk), 0);
    assert_eq!(
        s.complete(&tid(1), 1, &wk, TaskStatus::Succeeded, 3),
        Completion::Stale,
        "a report after the cancel is stale"
    );
    let placed = s.place(3);
    assert_eq!(seqs(&placed), vec![2], "the freed slot is reused");

    // Delayed (in retry backoff): it must not come back after tick().
    s.submit(wasm_task(4, Priority::Normal, MIB, 1));
    assert!(matches!(
        s.complete(&tid(2), 1, &wk, TaskStatus::Succeeded, 4),
        Completion::Final(_)
    ));
    let placed = s.place(4);
    assert_eq!(seqs(&placed), vec![4]);
    assert!(matches!(
        s.complete(&tid(4), 1, &wk, TaskStatus::Failed, 5),
        Completion::Retry(_)
    ));
    let (rec, running) = s.cancel(&tid(4), 6).expect("task 4 is live");
    assert_eq!(rec.state, TaskState::Cancelled);
    assert_eq!(running, None);
    assert_eq!(s.queued(), 0);
    assert_eq!(s.tick(2_000).changes, Vec::new());
    assert!(s.place(2_000).is_empty());
    assert_eq!(s.live(), 0);
}

#[test]
fn a_task_too_big_for_every_worker_waits_without_blocking_the_queue() {
    let mut s = sched();
    s.add_worker(key(0), &worker_info(4, 512 * MIB, true, &[]), &[], 0);
    s.add_worker(key(1), &worker_info(4, 256 * MIB, true, &[]), &[], 0);
    s.submit(wasm_task(1, Priority::High, GIB, 0));
    s.submit(wasm_task(2, Priority::Normal, 64 * MIB, 0));
    s.submit(wasm_task(3, Priority::Low, 64 * MIB, 0));
    let placed = s.place(0);
    assert_eq!(seqs(&placed), vec![2, 3]);
    let big = s.task(&tid(1)).expect("still live");
    assert_eq!(big.state, TaskState::Queued);
    assert_eq!(big.attempt, 0);
    assert_eq!(s.queued(), 1);
    assert!(s.place(1).is_empty(), "still too big");
}

#[test]
fn memory_in_use_limits_placement_until_released() {
    let mut s = sched();
    s.add_worker(key(0), &worker_info(4, 256 * MIB, true, &[]), &[], 0);
    for seq in 1..=3 {
        s.submit(wasm_task(seq, Priority::Normal, 100 * MIB, 0));
    }
    assert_eq!(
        seqs(&s.place(0)),
        vec![1, 2],
        "a third would exceed 256 MiB"
    );
    assert!(matches!(
        s.complete(&tid(1), 1, &key(0), TaskStatus::Succeeded, 1),
        Completion::Final(_)
    ));
    assert_eq!(seqs(&s.place(1)), vec![3]);
}

#[test]
fn command_tasks_go_only_to_workers_that_allow_the_program() {
    let mut s = sched();
    let a = key(0);
    let b = key(1);
    s.add_worker(a, &worker_info(4, GIB, false, &["ls"]), &[], 0);
    s.add_worker(b, &worker_info(4, GIB, true, &["grep", "sort"]), &[], 0);
    s.submit(command_task(1, "grep"));
    s.submit(command_task(2, "ls"));
    s.submit(command_task(3, "rm"));
    s.submit(wasm_task(4, Priority::Normal, MIB, 0));
    s.submit(command_task(5, "sort"));

    let placed = s.place(0);
    let on: HashMap<u64, Option<WorkerKey>> = placed.iter().map(|r| (r.seq, r.worker)).collect();
    assert_eq!(on.len(), 4, "{placed:?}");
    assert_eq!(on[&1], worker_hex(&b));
    assert_eq!(on[&2], worker_hex(&a));
    assert_eq!(on[&4], worker_hex(&b), "a only runs commands");
    assert_eq!(on[&5], worker_hex(&b));
    let rm = s.task(&tid(3)).expect("live");
    assert_eq!(rm.state, TaskState::Queued, "nobody allows rm");
    assert!(s.place(1).is_empty());
}

// ---------------------------------------------------------------------------
// Property test: random operation sequences against a small model.
// ---------------------------------------------------------------------------

const WORKERS: u8 = 4;

#[derive(Clone, Debug)]
enum Op {
    Submit {
        priority: Priority,
        memory_mib: u64,
        retries: u32,
    },
    AddWorker {
        idx: u8,
        slots: u32,
        /// Reports the runs it holds (a reconnect that kept them), or none
        /// (a fresh process: its old leases are lost).
        report: bool,
    },
    /// A task too big for every worker: it waits, costing nothing.
    SubmitHuge,
    Refuse {
        lease: Index,
    },
    Drain {
        idx: u8,
    },
    /// The dispatcher restarts: a fresh scheduler reloads the live records
    /// as the store holds them (leases are written before they go out).
    Restart,
    Heartbeat {
        idx: u8,
    },
    Advance {
        ms: u64,
    },
    Place,
    Complete {
        lease: Index,
        ok: bool,
    },
    StaleComplete {
        task: Index,
        attempt_off: u32,
        other_worker: bool,
    },
    Cancel {
        task: Index,
    },
    KillWorker {
        idx: u8,
    },
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::High),
        Just(Priority::Normal),
        Just(Priority::Low)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (priority(), 1u64..=64, 0u32..3).prop_map(|(priority, memory_mib, retries)| {
            Op::Submit {
                priority,
                memory_mib,
                retries,
            }
        }),
        2 => (0..WORKERS, 1u32..=4, any::<bool>())
            .prop_map(|(idx, slots, report)| Op::AddWorker { idx, slots, report }),
        1 => Just(Op::SubmitHuge),
        2 => any::<Index>().prop_map(|lease| Op::Refuse { lease }),
        1 => (0..WORKERS).prop_map(|idx| Op::Drain { idx }),
        1 => Just(Op::Restart),
        3 => (0..WORKERS).prop_map(|idx| Op::Heartbeat { idx }),
        2 => (0u64..5_000).prop_map(|ms| Op::Advance { ms }),
        1 => (30_000u64..45_000).prop_map(|ms| Op::Advance { ms }),
        4 => Just(Op::Place),
        4 => (any::<Index>(), any::<bool>()).prop_map(|(lease, ok)| Op::Complete { lease, ok }),
        1 => (any::<Index>(), 1u32..=3, any::<bool>()).prop_map(
            |(task, attempt_off, other_worker)| Op::StaleComplete {
                task,
                attempt_off,
                other_worker,
            }
        ),
        1 => any::<Index>().prop_map(|task| Op::Cancel { task }),
        1 => (0..WORKERS).prop_map(|idx| Op::KillWorker { idx }),
    ]
}

/// The scheduler plus what the service would have recorded.
struct Model {
    sched: Scheduler,
    now: u64,
    next_seq: u64,
    /// Every submitted id, in submission order.
    submitted: Vec<TaskId>,
    /// Results recorded (`Completion::Final` or `Change::Give`), by id.
    results: HashMap<TaskId, u32>,
    cancelled: BTreeSet<TaskId>,
    /// The most recent lease each task was given: (attempt, worker).
    last_lease: HashMap<TaskId, (u32, WorkerKey)>,
    /// The highest attempt each task was given, across restarts.
    max_attempt: HashMap<TaskId, u32>,
    /// Workers told to drain (until a restart forgets every worker).
    drained: BTreeSet<WorkerKey>,
    /// Tasks no worker can ever take.
    huge: BTreeSet<TaskId>,
}

type Check = Result<(), TestCaseError>;

fn other_key(k: &WorkerKey) -> WorkerKey {
    // Keys are key(i) = [i + 1; 32]; this is key((i + 1) % WORKERS).
    key(k.0[0] % WORKERS)
}

impl Model {
    fn new() -> Self {
        Self {
            sched: sched(),
            now: 1_000,
            next_seq: 1,
            submitted: Vec::new(),
            results: HashMap::new(),
            cancelled: BTreeSet::new(),
            last_lease: HashMap::new(),
            max_attempt: HashMap::new(),
            drained: BTreeSet::new(),
            huge: BTreeSet::new(),
        }
    }

    fn sorted_leases(&self) -> Vec<(TaskId, u32, WorkerKey)> {
        let mut l = self.sched.leases();
        l.sort();
        l
    }

    /// Ready and placeable: queued, no backoff pending, not too big (every
    /// other task in this test fits every worker).
    fn ready(&self) -> Vec<&TaskRecord> {
        let mut ready: Vec<&TaskRecord> = self
            .sched
            .live_ids()
            .filter_map(|id| self.sched.task(id))
            .filter(|r| r.state == TaskState::Queued && r.not_before_ms == 0)
            .filter(|r| !self.huge.contains(&r.id))
            .collect();
        ready.sort_by_key(|r| (r.spec.priority, r.seq));
        ready
    }

    fn record_result(&mut self, id: TaskId) -> Check {
        prop_assert!(
            !self.cancelled.contains(&id),
            "{id:?} recorded after it was cancelled"
        );
        let n = self.results.entry(id).or_insert(0);
        *n += 1;
        prop_assert_eq!(*n, 1, "{:?} recorded twice", id);
        Ok(())
    }

    fn apply_changes(&mut self, changes: Vec<Change>) -> Check {
        let max_lost = self.sched.config().max_lost;
        let max_refused = self.sched.config().max_refused;
        for change in changes {
            match change {
                Change::Lost(rec, _) => {
                    prop_assert_eq!(rec.state, TaskState::Queued);
                    prop_assert_eq!(rec.worker.as_ref(), None);
                    prop_assert_eq!(rec.not_before_ms, 0);
                    prop_assert!(rec.lost < max_lost);
                    prop_assert_eq!(self.sched.task(&rec.id), Some(&rec));
                }
                Change::Refused(rec, _) => {
                    prop_assert_eq!(rec.state, TaskState::Queued);
                    prop_assert_eq!(rec.worker.as_ref(), None);
                    prop_assert!(rec.not_before_ms > self.now, "a refusal waits");
                    prop_assert!(rec.refused < max_refused);
                    prop_assert_eq!(self.sched.task(&rec.id), Some(&rec));
                }
                Change::Give(rec, _msg) => {
                    prop_assert_eq!(rec.state, TaskState::Done);
                    prop_assert_eq!(rec.status, Some(TaskStatus::Failed));
                    prop_assert!(rec.dead_letter);
                    prop_assert!(rec.lost >= max_lost || rec.refused >= max_refused);
                    prop_assert!(self.sched.task(&rec.id).is_none());
                    self.record_result(rec.id)?;
                }
            }
        }
        Ok(())
    }

    /// The changes of a removal name exactly the leases the dead workers held.
    fn check_removal(
        before: &[(TaskId, u32, WorkerKey)],
        dead: &[WorkerKey],
        changes: &[Change],
    ) -> Check {
        let expected: Vec<TaskId> = before
            .iter()
            .filter(|l| dead.contains(&l.2))
            .map(|l| l.0)
            .collect();
        Self::check_changed(expected, changes, "the dead workers' leases")
    }

    /// `changes` name exactly the tasks `expected`.
    fn check_changed(mut expected: Vec<TaskId>, changes: &[Change], what: &str) -> Check {
        expected.sort();
        let mut got: Vec<TaskId> = changes.iter().map(|c| c.record().id).collect();
        got.sort();
        prop_assert_eq!(got, expected, "{}, no more, no less", what);
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Check {
        match op {
            Op::Submit {
                priority,
                memory_mib,
                retries,
            } => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let rec = record(
                    seq,
                    spec(wasm_kind(), *priority, memory_mib * MIB, *retries),
                    self.now,
                );
                self.submitted.push(rec.id);
                self.sched.submit(rec);
            }
            Op::AddWorker { idx, slots, report } => {
                let k = key(*idx);
                let held: Vec<(TaskId, u32, WorkerKey)> = self
                    .sorted_leases()
                    .into_iter()
                    .filter(|l| l.2 == k)
                    .collect();
                let running: Vec<(TaskId, u32)> = if *report {
                    held.iter().map(|l| (l.0, l.1)).collect()
                } else {
                    Vec::new()
                };
                let reg = self
                    .sched
                    .add_worker(k, &wasm_worker(*slots), &running, self.now);
                prop_assert!(self.sched.has_worker(&k));
                prop_assert!(reg.stray.is_empty(), "every reported run held a lease");
                if *report {
                    prop_assert!(reg.changes.is_empty());
                    prop_assert_eq!(
                        running_count(&self.sched, &k),
                        Some(held.len() as u32),
                        "re-registering with its runs keeps the leases"
                    );
                } else {
                    let expected = held.iter().map(|l| l.0).collect();
                    Self::check_changed(expected, &reg.changes, "unreported leases")?;
                    prop_assert_eq!(running_count(&self.sched, &k), Some(0));
                    self.apply_changes(reg.changes)?;
                }
                prop_assert_eq!(
                    self.sched.is_draining(&k),
                    self.drained.contains(&k),
                    "a drain sticks across a re-registration"
                );
            }
            Op::SubmitHuge => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let rec = record(seq, spec(wasm_kind(), Priority::High, 2 * GIB, 0), self.now);
                self.submitted.push(rec.id);
                self.huge.insert(rec.id);
                let id = rec.id;
                self.sched.submit(rec);
                if self.sched.workers().next().is_some() {
                    let why = self.sched.why_waiting(&id, self.now).unwrap_or_default();
                    prop_assert!(why.contains("2 GiB of memory"), "{}", why);
                }
            }
            Op::Refuse { lease } => {
                let leases = self.sorted_leases();
                if leases.is_empty() {
                    return Ok(());
                }
                let (id, attempt, wk) = leases[lease.index(leases.len())];
                let before = self.sched.task(&id).cloned().expect("leased task is live");
                let change = self.sched.refuse(&id, attempt, &wk, "draining", self.now);
                let Some(change) = change else {
                    return Err(TestCaseError::fail(
                        "the lease holder's refusal was ignored",
                    ));
                };
                let rec = change.record();
                prop_assert_eq!(rec.refused, before.refused + 1);
                prop_assert_eq!(rec.failures, before.failures, "no retry budget used");
                prop_assert_eq!(rec.lost, before.lost, "not counted as lost");
                self.apply_changes(vec![change])?;
            }
            Op::Drain { idx } => {
                let k = key(*idx);
                self.sched.drain_worker(&k);
                if self.sched.has_worker(&k) {
                    self.drained.insert(k);
                }
                prop_assert_eq!(self.sched.is_draining(&k), self.sched.has_worker(&k));
            }
            Op::Restart => {
                let mut records: Vec<TaskRecord> = self.sched.live_records().cloned().collect();
                records.sort_by_key(|r| (r.spec.priority, r.seq));
                let running: Vec<TaskId> = records
                    .iter()
                    .filter(|r| r.state == TaskState::Running)
                    .map(|r| r.id)
                    .collect();
                let attempts: HashMap<TaskId, u32> =
                    records.iter().map(|r| (r.id, r.attempt)).collect();
                let cfg = self.sched.config().clone();
                self.sched = Scheduler::new(cfg);
                self.drained.clear();
                let changes = self.sched.restore(records, self.now);
                Self::check_changed(running.clone(), &changes, "the tasks running at the crash")?;
                for c in &changes {
                    prop_assert!(!matches!(c, Change::Refused(..)));
                }
                self.apply_changes(changes)?;
                for id in self.sched.live_ids() {
                    let r = self.sched.task(id).expect("live");
                    // A task stored as queued that never ran may have been
                    // sent as attempt 1 before the crash: 1 is skipped.
                    let skipped = u32::from(!running.contains(id) && attempts[id] == 0);
                    prop_assert_eq!(
                        r.attempt,
                        attempts[id] + skipped,
                        "restore keeps attempt numbers, skipping one for queued tasks"
                    );
                    prop_assert_eq!(r.state, TaskState::Queued);
                }
            }
            Op::Heartbeat { idx } => {
                let k = key(*idx);
                let known = self.sched.has_worker(&k);
                let running = running_count(&self.sched, &k).unwrap_or(0);
                prop_assert_eq!(self.sched.heartbeat(&k, running, self.now), known);
            }
            Op::Advance { ms } => {
                self.now += ms;
                let limit = {
                    let c = self.sched.config();
                    c.heartbeat_ms * u64::from(c.missed_heartbeats)
                };
                let dead: Vec<WorkerKey> = self
                    .sched
                    .workers()
                    .filter(|(_, _, _, seen)| self.now - seen > limit)
                    .map(|(k, ..)| *k)
                    .collect();
                let alive: Vec<WorkerKey> = self
                    .sched
                    .workers()
                    .map(|(k, ..)| *k)
                    .filter(|k| !dead.contains(k))
                    .collect();
                let before = self.sorted_leases();
                let expired: Vec<TaskId> = before
                    .iter()
                    .filter(|l| !dead.contains(&l.2))
                    .filter(|l| {
                        self.sched
                            .lease_deadline(&l.0)
                            .is_some_and(|d| d <= self.now)
                    })
                    .map(|l| l.0)
                    .collect();
                let mut expected: Vec<TaskId> = before
                    .iter()
                    .filter(|l| dead.contains(&l.2))
                    .map(|l| l.0)
                    .collect();
                expected.extend(expired);
                let tick = self.sched.tick(self.now);
                let mut sorted_dead = dead.clone();
                sorted_dead.sort();
                prop_assert_eq!(&tick.dead, &sorted_dead);
                let changes = tick.changes;
                Self::check_changed(expected, &changes, "dead workers' and expired leases")?;
                for k in &dead {
                    prop_assert!(!self.sched.has_worker(k), "silent worker kept");
                    // A dead worker registers afresh and says again that it drains.
                    self.drained.remove(k);
                }
                for k in &alive {
                    prop_assert!(self.sched.has_worker(k), "live worker dropped");
                }
                self.apply_changes(changes)?;
                // Backoffs that ran out are released by this tick.
                for id in self.sched.live_ids() {
                    let r = self.sched.task(id).expect("live");
                    prop_assert!(
                        r.not_before_ms == 0 || r.not_before_ms > self.now,
                        "{:?} still delayed to {} at {}",
                        id,
                        r.not_before_ms,
                        self.now
                    );
                }
            }
            Op::Place => self.place()?,
            Op::Complete { lease, ok } => {
                let leases = self.sorted_leases();
                if leases.is_empty() {
                    return Ok(());
                }
                let (id, attempt, wk) = leases[lease.index(leases.len())];
                let before = self.sched.task(&id).cloned().expect("leased task is live");
                let status = if *ok {
                    TaskStatus::Succeeded
                } else {
                    TaskStatus::Failed
                };
                match self.sched.complete(&id, attempt, &wk, status, self.now) {
                    Completion::Final(rec) => {
                        prop_assert!(*ok || before.failures >= before.spec.retries);
                        prop_assert_eq!(rec.state, TaskState::Done);
                        prop_assert_eq!(rec.status, Some(status));
                        prop_assert_eq!(rec.dead_letter, !*ok);
                        prop_assert_eq!(rec.attempt, attempt);
                        prop_assert!(self.sched.task(&id).is_none());
                        self.record_result(id)?;
                    }
                    Completion::Retry(rec) => {
                        prop_assert!(!*ok && before.failures < before.spec.retries);
                        prop_assert_eq!(rec.state, TaskState::Queued);
                        prop_assert_eq!(rec.failures, before.failures + 1);
                        prop_assert!(rec.not_before_ms > self.now);
                        prop_assert_eq!(self.sched.task(&id), Some(&rec));
                    }
                    Completion::Stale => {
                        prop_assert!(false, "the lease holder's report was called stale");
                    }
                }
            }
            Op::StaleComplete {
                task,
                attempt_off,
                other_worker,
            } => {
                if self.submitted.is_empty() {
                    return Ok(());
                }
                let id = self.submitted[task.index(self.submitted.len())];
                let current = self
                    .sched
                    .task(&id)
                    .filter(|r| r.state == TaskState::Running)
                    .map(|r| (r.attempt, r.worker.expect("running")));
                let (attempt, wk) = match (current, self.last_lease.get(&id)) {
                    (Some((a, w)), _) if *other_worker => (a, other_key(&w)),
                    (Some((a, w)), _) => (a.saturating_sub(*attempt_off), w),
                    // Not running: replay its last lease exactly.
                    (None, Some(&(a, w))) if *other_worker => (a, other_key(&w)),
                    (None, Some(&(a, w))) => (a, w),
                    (None, None) => (*attempt_off, key(0)),
                };
                let leases = self.sorted_leases();
                let rec = self.sched.task(&id).cloned();
                let queued = self.sched.queued();
                prop_assert_eq!(
                    self.sched
                        .complete(&id, attempt, &wk, TaskStatus::Succeeded, self.now),
                    Completion::Stale
                );
                prop_assert_eq!(self.sorted_leases(), leases);
                prop_assert_eq!(self.sched.task(&id).cloned(), rec);
                prop_assert_eq!(self.sched.queued(), queued);
            }
            Op::Cancel { task } => {
                if self.submitted.is_empty() {
                    return Ok(());
                }
                let id = self.submitted[task.index(self.submitted.len())];
                let was = self.sched.task(&id).cloned();
                let lease = self
                    .sorted_leases()
                    .into_iter()
                    .find(|l| l.0 == id)
                    .map(|(_, a, w)| (w, a));
                match (was, self.sched.cancel(&id, self.now)) {
                    (Some(_), Some((rec, running))) => {
                        prop_assert_eq!(rec.state, TaskState::Cancelled);
                        prop_assert_eq!(rec.status, Some(TaskStatus::Cancelled));
                        prop_assert_eq!(rec.worker.as_ref(), None);
                        prop_assert_eq!(running, lease);
                        prop_assert!(self.sched.task(&id).is_none());
                        prop_assert!(!self.results.contains_key(&id));
                        prop_assert!(self.cancelled.insert(id), "cancelled twice");
                    }
                    (None, None) => {}
                    (was, got) => {
                        prop_assert!(false, "cancel({id:?}): live before {was:?}, got {got:?}");
                    }
                }
            }
            Op::KillWorker { idx } => {
                let k = key(*idx);
                let before = self.sorted_leases();
                let changes = self.sched.remove_worker(&k, self.now);
                prop_assert!(!self.sched.has_worker(&k));
                self.drained.remove(&k);
                Self::check_removal(&before, &[k], &changes)?;
                self.apply_changes(changes)?;
            }
        }
        Ok(())
    }

    fn place(&mut self) -> Check {
        let ready_before: HashMap<TaskId, u32> =
            self.ready().iter().map(|r| (r.id, r.attempt)).collect();
        let placed = self.sched.place(self.now);
        let mut last: Option<(Priority, u64)> = None;
        for rec in &placed {
            prop_assert_eq!(
                ready_before.get(&rec.id).map(|a| a + 1),
                Some(rec.attempt),
                "placed {:?} was ready, and its attempt went up by one",
                rec.id
            );
            prop_assert_eq!(rec.state, TaskState::Running);
            prop_assert_eq!(self.sched.task(&rec.id), Some(rec));
            let k = (rec.spec.priority, rec.seq);
            if let Some(prev) = last {
                prop_assert!(prev < k, "placed out of order: {prev:?} then {k:?}");
            }
            last = Some(k);
            let wk = rec.worker.expect("placed on a worker");
            prop_assert!(!self.drained.contains(&wk), "placed on a draining worker");
            prop_assert!(
                !self.huge.contains(&rec.id),
                "placed a task too big for every worker"
            );
            let prev = self.max_attempt.insert(rec.id, rec.attempt).unwrap_or(0);
            prop_assert!(
                rec.attempt > prev,
                "attempt {} of {:?} is not above every earlier one ({})",
                rec.attempt,
                rec.id,
                prev
            );
            self.last_lease.insert(rec.id, (rec.attempt, wk));
        }
        let remaining: Vec<(Priority, u64)> = self
            .ready()
            .iter()
            .map(|r| (r.spec.priority, r.seq))
            .collect();
        if let (Some(last), Some(first)) = (last, remaining.first()) {
            prop_assert!(
                last < *first,
                "{first:?} left queued while {last:?} was placed"
            );
        }
        if let Some(first) = remaining.first() {
            for (k, slots, running, _) in self.sched.workers() {
                if self.sched.is_draining(k) {
                    continue;
                }
                prop_assert!(
                    running >= slots,
                    "{first:?} left queued while worker {} has {} of {} slots busy",
                    k.short(),
                    running,
                    slots
                );
            }
        }
        Ok(())
    }

    fn check_invariants(&self) -> Check {
        let live: BTreeSet<TaskId> = self.sched.live_ids().copied().collect();
        prop_assert_eq!(live.len(), self.sched.live());
        let submitted: BTreeSet<TaskId> = self.submitted.iter().copied().collect();
        prop_assert!(live.is_subset(&submitted), "a live task nobody submitted");

        // (a) nothing lost: live xor finished; (c) finished at most once.
        for id in &self.submitted {
            let recorded = self.results.get(id).copied().unwrap_or(0);
            let cancelled = u32::from(self.cancelled.contains(id));
            prop_assert!(recorded + cancelled <= 1, "{id:?} finished twice");
            let finished = recorded + cancelled == 1;
            prop_assert!(
                live.contains(id) != finished,
                "{:?}: live {} finished {}",
                id,
                live.contains(id),
                finished
            );
        }

        // (b) one lease per task, matching the record.
        let leases = self.sorted_leases();
        let mut leased = BTreeSet::new();
        for (id, attempt, wk) in &leases {
            prop_assert!(leased.insert(*id), "two leases for {id:?}");
            let rec = self.sched.task(id).expect("leases name live tasks");
            prop_assert_eq!(rec.attempt, *attempt);
            prop_assert_eq!(rec.state, TaskState::Running);
            prop_assert_eq!(rec.worker, worker_hex(wk));
            prop_assert!(self.sched.has_worker(wk));
            let deadline = self.sched.lease_deadline(id);
            prop_assert_eq!(
                deadline,
                Some(
                    rec.updated_ms
                        + rec.spec.limits.timeout_ms
                        + self.sched.config().lease_grace_ms
                ),
                "every lease has its deadline: timeout plus grace"
            );
        }
        let mut queued = 0;
        for id in &live {
            let rec = self.sched.task(id).expect("live");
            match rec.state {
                TaskState::Running => {
                    prop_assert!(leased.contains(id), "{id:?} running without a lease");
                }
                TaskState::Queued => {
                    queued += 1;
                    prop_assert!(!leased.contains(id));
                    prop_assert_eq!(rec.worker.as_ref(), None);
                    prop_assert_eq!(self.sched.lease_deadline(id), None);
                    prop_assert!(self.sched.why_waiting(id, self.now).is_some());
                }
                s => prop_assert!(false, "live task {id:?} is {s}"),
            }
        }
        prop_assert_eq!(
            self.sched.queued(),
            queued,
            "queue holds each queued task once"
        );
        // No hidden leases: each worker's running count is what leases() shows.
        for (k, _, running, _) in self.sched.workers() {
            let shown = leases.iter().filter(|l| l.2 == *k).count();
            prop_assert_eq!(running as usize, shown);
        }
        Ok(())
    }
}

fn running_count(s: &Scheduler, k: &WorkerKey) -> Option<u32> {
    s.workers()
        .find(|(wk, ..)| *wk == k)
        .map(|(_, _, running, _)| running)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_operations_keep_the_invariants(ops in prop::collection::vec(op(), 1..200)) {
        let mut m = Model::new();
        for op in &ops {
            m.step(op)?;
            m.check_invariants()?;
        }
        // Wind down: a restart forgets every worker and drain, the tasks
        // too big for anyone are cancelled, and with fresh workers and time
        // everything left finishes.
        m.step(&Op::Restart)?;
        let huge: Vec<TaskId> = m.huge.iter().copied().collect();
        for id in huge {
            if m.sched.cancel(&id, m.now).is_some() {
                m.cancelled.insert(id);
            }
        }
        for idx in 0..WORKERS {
            m.sched.add_worker(key(idx), &wasm_worker(4), &[], m.now);
        }
        for _ in 0..1_000 {
            if m.sched.live() == 0 {
                break;
            }
            m.step(&Op::Advance { ms: 1_000 })?;
            for idx in 0..WORKERS {
                m.step(&Op::Heartbeat { idx })?;
            }
            m.step(&Op::Place)?;
            let leases = m.sorted_leases();
            for (id, attempt, wk) in leases {
                let done = m.sched.complete(&id, attempt, &wk, TaskStatus::Succeeded, m.now);
                prop_assert!(matches!(done, Completion::Final(_)), "{:?}", done);
                m.record_result(id)?;
            }
            m.check_invariants()?;
        }
        prop_assert_eq!(m.sched.live(), 0, "drained");
        m.check_invariants()?;
    }
}

#[test]
fn a_task_that_requires_labels_runs_only_where_all_are_and_says_what_is_missing() {
    let labelled = |name: &str, labels: &[&str]| WorkerInfo {
        name: name.to_owned(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        ..wasm_worker(4)
    };
    let mut s = sched();
    let mut rec = wasm_task(1, Priority::Normal, MIB, 0);
    rec.spec.require = vec!["gpu".to_owned(), "rack-2".to_owned()];
    let id = rec.id;
    s.submit(rec);
    s.add_worker(key(0), &labelled("plain", &[]), &[], 0);
    s.add_worker(key(1), &labelled("half", &["gpu"]), &[], 0);
    assert!(s.place(0).is_empty(), "no worker carries both labels");
    let why = s.why_waiting(&id, 0).expect("queued");
    assert_eq!(
        why,
        "no registered worker carries the labels gpu, rack-2; closest: half (lacks rack-2)"
    );
    // A worker with both (and more) takes it.
    s.add_worker(key(2), &labelled("both", &["rack-2", "gpu", "ssd"]), &[], 0);
    let placed = s.place(0);
    assert_eq!(placed.len(), 1);
    assert_eq!(placed[0].worker, Some(key(2)));
}
