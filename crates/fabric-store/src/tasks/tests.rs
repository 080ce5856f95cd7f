use fabric_proto::{
    Priority, Sha256, TaskId, TaskOutcome, TaskRecord, TaskSpec, TaskState, TaskStatus,
};

use crate::live_key;
use crate::testing::{flush, temp_store};

fn record(seq: u64, priority: Priority) -> TaskRecord {
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.priority = priority;
    TaskRecord::queued(TaskId::new(), spec, seq, 1)
}

fn outcome() -> TaskOutcome {
    let mut o = TaskOutcome::rejected("x");
    o.status = TaskStatus::Succeeded;
    o.exit_code = Some(0);
    o
}

#[test]
fn live_tasks_come_back_in_queue_order_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (low, high, normal) = (
        record(1, Priority::Low),
        record(2, Priority::High),
        record(3, Priority::Normal),
    );
    {
        let store = crate::testing::reopen(dir.path());
        for r in [&low, &high, &normal] {
            store.save_task(r).unwrap();
        }
        let mut done = normal.clone();
        done.state = TaskState::Done;
        done.status = Some(TaskStatus::Succeeded);
        assert!(store.record_result(&done, &outcome()).unwrap());
        flush(&store);
    }
    let store = crate::testing::reopen(dir.path());
    let live: Vec<_> = store
        .live_tasks()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(live, vec![high.id, low.id]);
    assert_eq!(store.result(&normal.id).unwrap().unwrap(), outcome());
    assert_eq!(
        store.task(&normal.id).unwrap().unwrap().state,
        TaskState::Done
    );
}

#[test]
fn the_live_key_is_the_shared_priority_rank_then_seq_then_id() {
    for p in [Priority::High, Priority::Normal, Priority::Low] {
        let r = record(0x0102_0304_0506_0708, p);
        let k = live_key(&r);
        assert_eq!(k[0], p.rank());
        assert_eq!(k[1..9], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&k[9..], r.id.as_bytes());
    }
    // The bytes existing data dirs hold: High 0, Normal 1, Low 2.
    assert_eq!(live_key(&record(9, Priority::High))[0], 0);
    assert_eq!(live_key(&record(9, Priority::Normal))[0], 1);
    assert_eq!(live_key(&record(9, Priority::Low))[0], 2);
    // Priority first: a later high task sorts before an earlier low one.
    assert!(live_key(&record(5, Priority::High)) < live_key(&record(1, Priority::Normal)));
    assert!(live_key(&record(1, Priority::Low)) > live_key(&record(5, Priority::Normal)));
}

#[test]
fn live_tasks_drop_index_entries_without_a_live_task() {
    let (_dir, store) = temp_store();
    let r = record(1, Priority::Normal);
    store.save_task(&r).unwrap();
    store.live.insert(b"short", &[][..]).unwrap();
    let orphan = live_key(&record(2, Priority::Normal));
    store.live.insert(orphan, &[][..]).unwrap();
    let live: Vec<_> = store
        .live_tasks()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(live, vec![r.id]);
    assert_eq!(store.counts().unwrap().live, 1);
}

#[test]
fn a_result_is_recorded_once() {
    let (_dir, store) = temp_store();
    let mut r = record(1, Priority::Normal);
    store.save_task(&r).unwrap();
    r.state = TaskState::Done;
    r.status = Some(TaskStatus::Succeeded);
    assert!(store.record_result(&r, &outcome()).unwrap());
    let mut other = outcome();
    other.stdout = b"late".to_vec();
    assert!(!store.record_result(&r, &other).unwrap());
    assert_eq!(store.result(&r.id).unwrap().unwrap(), outcome());
}

#[test]
fn list_filters_and_pages_newest_first() {
    let (_dir, store) = temp_store();
    let recs: Vec<_> = (0..5).map(|i| record(i, Priority::Normal)).collect();
    for r in &recs {
        store.save_task(r).unwrap();
    }
    let mut cancelled = recs[1].clone();
    cancelled.state = TaskState::Cancelled;
    store.save_task(&cancelled).unwrap();
    let page = store.list(None, 2, None).unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![recs[4].id, recs[3].id]
    );
    let next = store.list(None, 10, Some(&recs[3].id)).unwrap();
    assert_eq!(next.len(), 3);
    let only = store.list(Some(TaskState::Cancelled), 10, None).unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].id, recs[1].id);
    assert_eq!(store.counts().unwrap().live, 4);
}

#[test]
fn list_finished_skips_unfinished_records_without_counting_them() {
    let (_dir, store) = temp_store();
    let recs: Vec<_> = (0..6).map(|i| record(i, Priority::Normal)).collect();
    for (i, r) in recs.iter().enumerate() {
        let mut r = r.clone();
        if i % 2 == 0 {
            r.state = TaskState::Cancelled;
        }
        store.save_task(&r).unwrap();
    }
    // Newest first: 4, 2, 0 are finished; 5, 3, 1 are not.
    let page = store.list_finished(None, 2, None).unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![recs[4].id, recs[2].id]
    );
    let rest = store.list_finished(None, 2, Some(&recs[2].id)).unwrap();
    assert_eq!(
        rest.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![recs[0].id]
    );
    assert!(
        store
            .list_finished(Some(TaskState::Done), 5, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn dead_letters_are_kept_apart() {
    let (_dir, store) = temp_store();
    let mut r = record(1, Priority::Normal);
    r.state = TaskState::Done;
    r.dead_letter = true;
    r.status = Some(TaskStatus::Failed);
    store.record_result(&r, &outcome()).unwrap();
    store.save_task(&record(2, Priority::Normal)).unwrap();
    assert_eq!(store.dead_letters().unwrap(), vec![r.id]);
    let counts = store.counts().unwrap();
    assert_eq!(
        counts,
        crate::StoreCounts {
            tasks: 2,
            live: 1,
            results: 1,
            dead_letters: 1,
        }
    );
}

#[test]
fn a_late_write_cannot_revive_a_finished_task() {
    let (_dir, store) = temp_store();
    let r = record(1, Priority::Normal);
    store.save_task(&r).unwrap();
    let mut done = r.clone();
    done.state = TaskState::Cancelled;
    done.status = Some(TaskStatus::Cancelled);
    assert!(store.record_result(&done, &outcome()).unwrap());
    // A lease decided before the cancel lands after it: ignored.
    let mut running = r.clone();
    running.state = TaskState::Running;
    assert!(!store.save_task(&running).unwrap());
    assert_eq!(
        store.task(&r.id).unwrap().unwrap().state,
        TaskState::Cancelled
    );
    assert!(store.live_tasks().unwrap().is_empty());
}

/// A record that does not decode, among many (several chunks in flight on
/// the reader threads), is an error of the whole read, not a panic.
#[test]
fn each_live_returns_a_damaged_record_as_an_error() {
    let (_dir, store) = temp_store();
    let recs: Vec<_> = (0..20_000).map(|i| record(i, Priority::Normal)).collect();
    for part in recs.chunks(1_000) {
        store.save_tasks(part).unwrap();
    }
    let bad = &recs[10];
    store
        .tasks
        .insert(
            bad.id.as_bytes(),
            store.enc("task", &"not a record").unwrap(),
        )
        .unwrap();
    let mut seen = 0;
    let read = store.each_live(|r: &TaskRecord| r.state, |_| seen += 1);
    assert!(
        matches!(read, Err(crate::StoreError::Corrupt { what: "task", .. })),
        "{read:?}"
    );
    assert!(seen < recs.len());
    // Mended, the same read gives every task, in queue order.
    store.save_task(bad).unwrap();
    let mut ids = Vec::new();
    assert_eq!(
        store
            .each_live(|r: &TaskRecord| r.state, |r| ids.push(r.id))
            .unwrap(),
        recs.len()
    );
    assert_eq!(ids, recs.iter().map(|r| r.id).collect::<Vec<_>>());
}
