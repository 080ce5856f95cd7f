//! Cold tasks: held slim after a restart, read back whole before placement
//! or a cancel touches them, and otherwise counted, aged and delayed like
//! any queued task.

use fabric_proto::wire::WorkerInfo;
use fabric_proto::{
    Priority, QueuedRecord, Sha256, TaskId, TaskRecord, TaskSpec, TaskState, from_cbor, to_cbor,
};

use crate::scheduler::{SchedConfig, Scheduler, WorkerKey};

fn tid(n: u64) -> TaskId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    TaskId::from_bytes(b)
}

/// A stored queued record (as the store holds it) and its projection.
fn stored(seq: u64, priority: Priority) -> (TaskRecord, QueuedRecord) {
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.priority = priority;
    spec.args = vec!["whole".into()];
    let rec = TaskRecord::queued(tid(seq), spec, seq, 1_000);
    let q = from_cbor(&to_cbor(&rec).unwrap()).unwrap();
    (rec, q)
}

fn worker(slots: u32) -> WorkerInfo {
    WorkerInfo {
        name: "w".to_owned(),
        slots,
        memory_bytes: 1 << 30,
        labels: Vec::new(),
        wasm: true,
        commands: Vec::new(),
        running: Vec::new(),
    }
}

const W: WorkerKey = WorkerKey([1; 32]);

/// Restores `n` queued tasks cold; their stored records, by seq.
fn restored(s: &mut Scheduler, n: u64) -> Vec<TaskRecord> {
    (1..=n)
        .map(|seq| {
            let (rec, q) = stored(seq, Priority::Normal);
            s.restore_cold(q);
            rec
        })
        .collect()
}

#[test]
fn placement_stops_at_a_cold_task_and_leases_it_once_it_is_read_back() {
    let mut s = Scheduler::new(SchedConfig::default());
    let stored = restored(&mut s, 5);
    s.add_worker(W, &worker(3), &[], 2_000);
    assert_eq!((s.live(), s.queued()), (5, 5));
    // Nothing is leased cold: the first three (the free slots) are wanted,
    // in queue order.
    assert!(s.place(2_000).is_empty());
    assert_eq!(s.wanted(), vec![tid(1), tid(2), tid(3)]);
    assert!(s.wanted().is_empty(), "taken");
    for rec in &stored[..3] {
        assert!(s.hydrate(rec.clone()));
    }
    let leased = s.place(2_000);
    assert_eq!(
        leased.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![tid(1), tid(2), tid(3)]
    );
    // The whole record, with the attempt a restart skips (0 -> 1 -> 2).
    assert_eq!(leased[0].spec.args, vec!["whole".to_owned()]);
    assert_eq!(leased[0].attempt, 2);
    assert!(s.is_cold(&tid(4)) && !s.is_cold(&tid(1)));
    assert_eq!(s.live(), 5);
    // A record that is not cold is refused.
    assert!(!s.hydrate(stored[0].clone()));
}

#[test]
fn cold_tasks_are_counted_live_and_dropped_when_their_record_is_gone() {
    let mut s = Scheduler::new(SchedConfig::default());
    restored(&mut s, 2);
    let (_, low) = stored(3, Priority::Low);
    s.restore_cold(low);
    let mut states: Vec<_> = s.live_states().collect();
    states.sort_by_key(|(_, p)| p.rank());
    assert_eq!(
        states,
        vec![
            (TaskState::Queued, Priority::Normal),
            (TaskState::Queued, Priority::Normal),
            (TaskState::Queued, Priority::Low)
        ]
    );
    assert!(s.is_live(&tid(3)));
    assert_eq!(s.cold_blobs().count(), 3);
    assert!(s.drop_cold(&tid(3)));
    assert!(!s.is_live(&tid(3)));
    assert_eq!((s.live(), s.queued()), (2, 2));
    // A cancel needs the whole record: none for a cold task.
    assert!(s.cancel(&tid(1), 5).is_none());
    assert!(s.is_live(&tid(1)));
}

#[test]
fn a_cold_task_ages_and_its_delay_runs_out_like_any_other() {
    let cfg = SchedConfig {
        aging_ms: 1_000,
        ..SchedConfig::default()
    };
    let mut s = Scheduler::new(cfg);
    let (low, q) = stored(1, Priority::Low);
    s.restore_cold(q);
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.not_before_ms = Some(50_000);
    let mut delayed = TaskRecord::queued(tid(2), spec, 2, 1_000);
    delayed.state = TaskState::Scheduled;
    delayed.not_before_ms = 50_000;
    s.restore_cold(from_cbor(&to_cbor(&delayed).unwrap()).unwrap());
    assert_eq!(
        s.cold_in(TaskState::Scheduled).collect::<Vec<_>>(),
        vec![&tid(2)]
    );
    // Waited a step: it climbed one rank.
    s.tick(2_500);
    // The delay ran out: ready and queued.
    s.tick(50_000);
    assert!(s.cold_in(TaskState::Scheduled).next().is_none());
    s.add_worker(W, &worker(2), &[], 50_000);
    assert!(s.place(50_000).is_empty());
    let wanted = s.wanted();
    assert_eq!(wanted.len(), 2);
    assert!(s.hydrate(low));
    assert!(s.hydrate(delayed));
    let leased = s.place(50_000);
    let first = leased.iter().find(|r| r.id == tid(1)).expect("leased");
    assert!(first.aged >= 1, "aging was kept: {first:?}");
    let second = leased.iter().find(|r| r.id == tid(2)).expect("leased");
    assert_eq!(second.not_before_ms, 0);
    assert_eq!(second.history.last().map(|a| a.started_ms), Some(50_000));
}

#[test]
fn cold_tasks_no_worker_could_run_are_parked_without_being_read_back() {
    let mut s = Scheduler::new(SchedConfig::default());
    restored(&mut s, 3);
    let mut commands_only = worker(4);
    commands_only.wasm = false;
    commands_only.commands = vec!["sh".into()];
    s.add_worker(W, &commands_only, &[], 2_000);
    assert!(s.place(2_000).is_empty());
    assert!(
        s.wanted().is_empty(),
        "nothing read back: no worker runs wasm"
    );
    assert_eq!((s.cold_count(), s.queued()), (3, 3));
}

#[test]
fn placement_goes_on_from_the_cold_task_it_stopped_at_and_views_leave_it_cold() {
    let mut s = Scheduler::new(SchedConfig::default());
    let stored = restored(&mut s, 4);
    s.add_worker(W, &worker(2), &[], 2_000);
    // A view lays what changed in memory over the stored record and
    // leaves the task cold.
    let mut view = stored[3].clone();
    assert!(s.overlay_cold(&mut view));
    assert_eq!(view.attempt, 1, "the attempt a restart skips");
    assert!(s.is_cold(&tid(4)));
    assert!(s.place(2_000).is_empty());
    assert_eq!(s.wanted(), vec![tid(1), tid(2)]);
    for rec in &stored[..2] {
        assert!(s.hydrate(rec.clone()));
    }
    let leased = s.place_on(2_000);
    assert_eq!(
        leased.iter().map(|r| (r.id, r.attempt)).collect::<Vec<_>>(),
        vec![(tid(1), 2), (tid(2), 2)]
    );
    assert!(s.place_on(2_000).is_empty(), "nothing to go on from");
    assert_eq!(s.cold_count(), 2);
}

/// Past `hot_tasks`, a submitted task is held cold: counted and queued in
/// order, read back when placement reaches it, and run as attempt 1 (its
/// first attempt still goes out unwritten).
#[test]
fn submits_past_the_hot_cap_are_held_cold_and_run_as_their_first_attempt() {
    let mut s = Scheduler::new(SchedConfig {
        hot_tasks: 2,
        ..SchedConfig::default()
    });
    let records: Vec<TaskRecord> = (1..=4).map(|seq| stored(seq, Priority::Normal).0).collect();
    for rec in &records {
        s.submit_stored(rec.clone());
    }
    assert_eq!((s.live(), s.queued(), s.cold_count()), (4, 4, 2));
    assert!(s.task(&tid(2)).is_some() && s.task(&tid(3)).is_none());
    assert!(s.is_cold(&tid(3)) && s.is_cold(&tid(4)));
    // Four slots, and memory for four tasks.
    s.add_worker(W, &worker(4), &[], 2_000);
    let mut leased: Vec<TaskRecord> = s.place(2_000);
    assert_eq!(
        leased.iter().map(|r| r.id).collect::<Vec<_>>(),
        [tid(1), tid(2)]
    );
    let wanted = s.wanted();
    assert_eq!(wanted, [tid(3), tid(4)], "read back in queue order");
    for id in wanted {
        let rec = records.iter().find(|r| r.id == id).expect("stored").clone();
        assert!(s.hydrate(rec));
    }
    leased.extend(s.place_on(2_000));
    assert_eq!(leased.len(), 4);
    for rec in &leased {
        assert_eq!(rec.attempt, 1, "{rec:?}");
        assert!(Scheduler::may_send_unwritten(rec), "{rec:?}");
    }
    // A task that waits on others is never held cold, nor one submitted
    // below the cap.
    let (rec, _) = stored(9, Priority::Normal);
    let mut held = rec.clone();
    held.state = TaskState::Waiting;
    assert!(super::ColdTask::submitted(&held).is_none());
    let mut s = Scheduler::new(SchedConfig::default());
    s.submit_stored(rec);
    assert_eq!(s.cold_count(), 0);
}
