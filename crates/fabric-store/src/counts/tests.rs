use std::collections::HashSet;

use fabric_proto::{Sha256, TaskId, TaskOutcome, TaskRecord, TaskSpec, TaskState, TaskStatus};

use crate::testing::{flush, temp_store};
use crate::{RetentionPolicy, Store, SweepCursor};

fn queued() -> TaskRecord {
    TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 1, 0)
}

fn finish(store: &Store, rec: &TaskRecord, status: TaskStatus, dead: bool) {
    let mut done = rec.clone();
    done.state = TaskState::Done;
    done.status = Some(status);
    done.dead_letter = dead;
    done.updated_ms = 1;
    let mut o = TaskOutcome::rejected("x");
    o.status = status;
    assert!(store.record_result(&done, &o).unwrap());
}

/// The counters, checked against a scan of the trees they count.
fn check(store: &Store) -> crate::TaskTotals {
    let t = store.totals().unwrap();
    let scanned = store.counts().unwrap();
    assert_eq!(t.tasks, scanned.tasks, "{t:?} vs {scanned:?}");
    assert_eq!(t.dead_letters, scanned.dead_letters, "{t:?} vs {scanned:?}");
    assert_eq!(t.finished_total(), scanned.results, "{t:?} vs {scanned:?}");
    t
}

#[test]
fn counters_follow_submits_results_dead_letters_and_sweeps() {
    let (_dir, store) = temp_store();
    let recs: Vec<TaskRecord> = (0..6).map(|_| queued()).collect();
    store.save_tasks(&recs).unwrap();
    // Writing a task again (a lease, a retry) does not count it twice.
    store.save_task(&recs[0]).unwrap();
    finish(&store, &recs[0], TaskStatus::Succeeded, false);
    finish(&store, &recs[1], TaskStatus::Succeeded, false);
    finish(&store, &recs[2], TaskStatus::Failed, true);
    finish(&store, &recs[3], TaskStatus::TimedOut, false);
    // A second result for the same task is refused and not counted.
    let mut o = TaskOutcome::rejected("again");
    o.status = TaskStatus::Failed;
    assert!(!store.record_result(&recs[1], &o).unwrap());
    let t = check(&store);
    assert_eq!(t.tasks, 6);
    assert_eq!(t.finished(TaskStatus::Succeeded), 2);
    assert_eq!(t.finished(TaskStatus::Failed), 1);
    assert_eq!(t.finished(TaskStatus::TimedOut), 1);
    assert_eq!(t.dead_letters, 1);

    // Retention removes the finished ones (updated at 1 ms) and the counts
    // go down with them; the two unfinished stay.
    let policy = RetentionPolicy {
        results_max_age_ms: 10,
        dead_letters_max_age_ms: 10,
        ..RetentionPolicy::default()
    };
    let swept = store
        .sweep(&policy, 1_000, &HashSet::new(), &mut SweepCursor::default())
        .unwrap();
    assert_eq!(swept.tasks, 4);
    let t = check(&store);
    assert_eq!(t.tasks, 2);
    assert_eq!(t.finished_total(), 0);
    assert_eq!(t.dead_letters, 0);
}

#[test]
fn counters_survive_a_reopen_and_a_store_without_them_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = crate::testing::reopen(dir.path());
        let recs: Vec<TaskRecord> = (0..3).map(|_| queued()).collect();
        store.save_tasks(&recs).unwrap();
        finish(&store, &recs[0], TaskStatus::Cancelled, false);
        flush(&store);
    }
    {
        let store = crate::testing::reopen(dir.path());
        let t = check(&store);
        assert_eq!((t.tasks, t.finished(TaskStatus::Cancelled)), (3, 1));
        // As a store written before the counters existed.
        store.counts.clear().unwrap();
        assert_eq!(store.totals().unwrap().tasks, 0);
        flush(&store);
    }
    let store = crate::testing::reopen(dir.path());
    let t = check(&store);
    assert_eq!((t.tasks, t.finished(TaskStatus::Cancelled)), (3, 1));
}
