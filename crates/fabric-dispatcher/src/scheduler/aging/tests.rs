//! Aging: a low task is not starved by a stream of higher-priority work.

use fabric_proto::wire::WorkerInfo;
use fabric_proto::{Priority, Sha256, TaskId, TaskKind, TaskRecord, TaskSpec, TaskStatus};
use proptest::prelude::*;

use crate::scheduler::{SchedConfig, Scheduler, WorkerKey};

const WORKER: WorkerKey = WorkerKey([7; 32]);

fn task(seq: u64, priority: Priority, now: u64) -> TaskRecord {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&seq.to_be_bytes());
    let spec = TaskSpec {
        priority,
        ..TaskSpec::new(TaskKind::Wasm {
            module: Sha256::of(b"m"),
        })
    };
    TaskRecord::queued(TaskId::from_bytes(b), spec, seq, now)
}

fn one_slot() -> WorkerInfo {
    WorkerInfo {
        name: "w".to_owned(),
        slots: 1,
        memory_bytes: 1 << 30,
        labels: Vec::new(),
        wasm: true,
        commands: Vec::new(),
        running: Vec::new(),
    }
}

/// A low task (seq 1) then, every `step` ms, `arrivals[i]` more tasks of
/// the priorities given, on one slot that finishes each task within its
/// step. Returns when the low task was leased, if it was by `horizon`.
fn low_task_leased_at(
    aging_ms: u64,
    step: u64,
    arrivals: &[Vec<Priority>],
    horizon: u64,
) -> Option<u64> {
    let mut s = Scheduler::new(SchedConfig {
        aging_ms,
        ..SchedConfig::default()
    });
    s.add_worker(WORKER, &one_slot(), &[], 0);
    s.submit(task(1, Priority::Low, 0));
    let mut seq = 1;
    let mut now = 0;
    let mut i = 0;
    while now <= horizon {
        // Never fewer than one new task per step: the slot is never idle
        // for the low task's sake.
        let batch = arrivals
            .get(i % arrivals.len().max(1))
            .cloned()
            .unwrap_or_default();
        for p in std::iter::once(Priority::High).chain(batch) {
            seq += 1;
            s.submit(task(seq, p, now));
        }
        i += 1;
        s.heartbeat(&WORKER, 0, now);
        s.tick(now);
        for rec in s.place(now) {
            if rec.seq == 1 {
                return Some(now);
            }
            s.complete(&rec.id, rec.attempt, &WORKER, TaskStatus::Succeeded, now);
        }
        now += step;
    }
    None
}

#[test]
fn without_aging_high_traffic_starves_a_low_task_and_with_it_does_not() {
    let arrivals = vec![vec![Priority::High]];
    assert_eq!(
        low_task_leased_at(0, 100, &arrivals, 60_000),
        None,
        "the control: starved for a minute without aging"
    );
    let at = low_task_leased_at(1_000, 100, &arrivals, 60_000).expect("leased");
    // Two steps up (low -> normal -> high) by 2 s; then it is the oldest
    // high task.
    assert!((2_000..=2_100).contains(&at), "leased at {at} ms");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever mix of high and normal work keeps arriving, a low task is
    /// leased within two aging periods (and one step).
    #[test]
    fn a_low_task_is_leased_within_two_aging_periods(
        aging_ms in 200u64..3_000,
        step in 10u64..200,
        arrivals in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![Just(Priority::High), Just(Priority::Normal), Just(Priority::Low)],
                0..3,
            ),
            1..20,
        ),
    ) {
        let horizon = 2 * aging_ms + 2 * step;
        let at = low_task_leased_at(aging_ms, step, &arrivals, horizon);
        prop_assert!(at.is_some(), "not leased by {} ms", horizon);
    }
}

/// A backlog that crossed `aging_ms` all at once climbs over several
/// ticks, a bounded number per tick, oldest first: one tick no longer
/// walks the whole queue under the core lock.
#[test]
fn a_backlog_that_aged_at_once_climbs_a_bounded_number_per_tick_oldest_first() {
    use super::AGE_WALK_PER_TICK;
    let mut s = Scheduler::new(SchedConfig {
        aging_ms: 1_000,
        ..SchedConfig::default()
    });
    let n = AGE_WALK_PER_TICK * 2 + AGE_WALK_PER_TICK / 2;
    for seq in 1..=n as u64 {
        s.submit(task(seq, Priority::Normal, 0));
    }
    let climbed = |s: &Scheduler| s.tasks.values().filter(|r| r.aged > 0).count();
    s.age(1_500);
    assert_eq!(climbed(&s), AGE_WALK_PER_TICK, "the first tick");
    let first = task(1, Priority::Normal, 0).id;
    assert_eq!(s.tasks[&first].aged, 1, "the oldest climbed first");
    s.age(1_600);
    s.age(1_700);
    assert_eq!(climbed(&s), n, "every task after three ticks");
    assert!(s.tasks.values().all(|r| r.aged == 1), "one step each");
}
