use fabric_proto::{TaskSpec, TaskStatus};

use super::*;

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
        let store = Store::open(dir.path()).unwrap();
        for r in [&low, &high, &normal] {
            store.save_task(r).unwrap();
        }
        let mut done = normal.clone();
        done.state = TaskState::Done;
        done.status = Some(TaskStatus::Succeeded);
        assert!(store.record_result(&done, &outcome()).unwrap());
        futures_flush(&store);
    }
    let store = Store::open(dir.path()).unwrap();
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

fn futures_flush(store: &Store) {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(store.flush())
        .unwrap();
}

#[test]
fn a_result_is_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
fn blobs_are_content_addressed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let sha = store.put_blob(b"module bytes").unwrap();
    assert_eq!(sha, Sha256::of(b"module bytes"));
    assert!(store.has_blob(&sha).unwrap());
    assert_eq!(store.blob(&sha).unwrap().unwrap(), b"module bytes");
    assert!(store.blob(&Sha256::of(b"other")).unwrap().is_none());
}

#[test]
fn dead_letters_and_peers() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut r = record(1, Priority::Normal);
    r.state = TaskState::Done;
    r.dead_letter = true;
    r.status = Some(TaskStatus::Failed);
    store.record_result(&r, &outcome()).unwrap();
    assert_eq!(store.dead_letters().unwrap(), vec![r.id]);
    store.add_peer(PeerRole::Worker, &[7; 32], "w").unwrap();
    assert!(store.is_peer(PeerRole::Worker, &[7; 32]).unwrap());
    assert!(!store.is_peer(PeerRole::Client, &[7; 32]).unwrap());
}

#[test]
fn group_commit_returns_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let gc = GroupCommit::start(store.clone(), std::time::Duration::from_millis(1));
        store.save_task(&record(1, Priority::Normal)).unwrap();
        let waits: Vec<_> = (0..8).map(|_| gc.durable()).collect();
        for w in waits {
            w.await.unwrap();
        }
    });
}

#[test]
fn a_late_write_cannot_revive_a_finished_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
