use std::collections::HashSet;

use fabric_proto::{Sha256, TaskId, TaskOutcome, TaskRecord, TaskSpec, TaskState, TaskStatus};

use super::{RetentionPolicy, SweepCursor};
use crate::testing::temp_store;
use crate::{EventKind, StoredEvent};

const DAY: u64 = 24 * 3600 * 1000;

fn policy() -> RetentionPolicy {
    RetentionPolicy {
        events_keep: 3,
        events_max_age_ms: 10 * DAY,
        results_max_age_ms: DAY,
        dead_letters_max_age_ms: 5 * DAY,
        blobs_unused_ms: 2 * DAY,
        uploads_stale_ms: DAY,
        max_per_pass: 100,
    }
}

fn event(at_ms: u64) -> StoredEvent {
    StoredEvent {
        at_ms,
        task: None,
        kind: EventKind::Submitted,
        detail: at_ms.to_string(),
        actor: None,
    }
}

fn finished(updated_ms: u64, dead_letter: bool) -> TaskRecord {
    let mut r = TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 1, 0);
    r.state = TaskState::Done;
    r.status = Some(TaskStatus::Succeeded);
    r.updated_ms = updated_ms;
    r.dead_letter = dead_letter;
    r
}

fn none() -> HashSet<Sha256> {
    HashSet::new()
}

#[test]
fn events_keep_the_newest_n_and_none_older_than_the_age() {
    let (_dir, store) = temp_store();
    for at in [1, 2, 3, 4, 5] {
        store.append_event(&event(at * DAY)).unwrap();
    }
    let mut cur = SweepCursor::default();
    let swept = store.sweep(&policy(), 5 * DAY, &none(), &mut cur).unwrap();
    assert_eq!(swept.events, 2, "only the newest 3 stay");
    let left: Vec<u64> = store
        .recent_events(10)
        .unwrap()
        .iter()
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(left, vec![3 * DAY, 4 * DAY, 5 * DAY]);
    // Ten days after the fourth, the third and fourth are too old.
    let swept = store.sweep(&policy(), 14 * DAY, &none(), &mut cur).unwrap();
    assert_eq!(swept.events, 2);
    assert_eq!(store.recent_events(10).unwrap(), vec![event(5 * DAY)]);
}

#[test]
fn finished_tasks_go_after_their_retention_dead_letters_later_live_never() {
    let (_dir, store) = temp_store();
    let done = finished(DAY, false);
    let dead = finished(DAY, true);
    let live = TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), 2, 0);
    let outcome = TaskOutcome::ended(TaskStatus::Failed, "x");
    store.record_result(&done, &outcome).unwrap();
    store.record_result(&dead, &outcome).unwrap();
    store.save_task(&live).unwrap();
    let mut cur = SweepCursor::default();
    assert_eq!(
        store
            .sweep(&policy(), 2 * DAY - 1, &none(), &mut cur)
            .unwrap()
            .tasks,
        0
    );
    assert_eq!(
        store
            .sweep(&policy(), 2 * DAY, &none(), &mut cur)
            .unwrap()
            .tasks,
        1
    );
    assert!(store.task(&done.id).unwrap().is_none());
    assert!(store.result(&done.id).unwrap().is_none());
    assert!(store.task(&dead.id).unwrap().is_some());
    assert_eq!(
        store
            .sweep(&policy(), 6 * DAY, &none(), &mut cur)
            .unwrap()
            .tasks,
        1
    );
    assert!(store.task(&dead.id).unwrap().is_none());
    assert!(store.dead_letters().unwrap().is_empty());
    assert!(store.task(&live.id).unwrap().is_some());
    assert_eq!(
        store
            .sweep(&policy(), 100 * DAY, &none(), &mut cur)
            .unwrap()
            .tasks,
        0
    );
}

#[test]
fn a_pass_looks_at_a_bounded_slice_and_the_next_one_resumes() {
    let (_dir, store) = temp_store();
    let outcome = TaskOutcome::ended(TaskStatus::Failed, "x");
    for _ in 0..5 {
        store.record_result(&finished(0, false), &outcome).unwrap();
    }
    let p = RetentionPolicy {
        max_per_pass: 2,
        ..policy()
    };
    let mut cur = SweepCursor::default();
    let mut passes = Vec::new();
    for _ in 0..4 {
        passes.push(store.sweep(&p, 10 * DAY, &none(), &mut cur).unwrap().tasks);
    }
    assert_eq!(passes, vec![2, 2, 1, 0]);
}

#[test]
fn blobs_go_once_no_live_task_referenced_them_for_the_age() {
    let (_dir, store) = temp_store();
    let used = store.put_blob(b"used").unwrap();
    let idle = store.put_blob(b"idle").unwrap();
    let mut cur = SweepCursor::default();
    let refs: HashSet<Sha256> = [used].into();
    // First seen now: both get the full grace period.
    assert_eq!(
        store.sweep(&policy(), DAY, &refs, &mut cur).unwrap().blobs,
        0
    );
    assert_eq!(
        store
            .sweep(&policy(), 3 * DAY - 1, &refs, &mut cur)
            .unwrap()
            .blobs,
        0
    );
    assert_eq!(
        store
            .sweep(&policy(), 3 * DAY, &refs, &mut cur)
            .unwrap()
            .blobs,
        1
    );
    assert!(!store.has_blob(&idle).unwrap());
    assert!(store.has_blob(&used).unwrap());
    // Unreferenced from 3 days on: gone two days later.
    assert_eq!(
        store
            .sweep(&policy(), 5 * DAY - 1, &none(), &mut cur)
            .unwrap()
            .blobs,
        0
    );
    assert_eq!(
        store
            .sweep(&policy(), 5 * DAY, &none(), &mut cur)
            .unwrap()
            .blobs,
        1
    );
    assert!(!store.has_blob(&used).unwrap());
}

#[test]
fn chunked_inputs_go_with_their_files_once_unused_for_the_age() {
    let (dir, store) = temp_store();
    let used = store.put_chunked(&[7u8; 10_000]).unwrap();
    let idle = store.put_chunked(&[8u8; 10_000]).unwrap();
    let file = |sha: &Sha256| dir.path().join("inputs").join(sha.to_hex());
    assert!(file(&idle.sha).exists());
    let mut cur = SweepCursor::default();
    let refs: HashSet<Sha256> = [used.sha].into();
    assert_eq!(
        store.sweep(&policy(), DAY, &refs, &mut cur).unwrap().blobs,
        0
    );
    let swept = store.sweep(&policy(), 3 * DAY, &refs, &mut cur).unwrap();
    assert_eq!(swept.blobs, 1, "{swept:?}");
    assert!(!store.has_blob(&idle.sha).unwrap());
    assert!(
        !file(&idle.sha).exists(),
        "the idle input's file is removed"
    );
    assert!(store.has_blob(&used.sha).unwrap());
    assert!(file(&used.sha).exists());
    assert_eq!(
        store.blob_range(&used.sha, 0, 4).unwrap(),
        Some((vec![7u8; 4], 10_000))
    );
}

#[test]
fn unfinished_uploads_go_after_no_piece_came_for_a_while() {
    let (dir, store) = temp_store();
    let stale = Sha256::of(b"stale upload");
    let piece = vec![1u8; fabric_proto::BLOB_CHUNK];
    let fresh = Sha256::of(&[piece.as_slice(), b"end"].concat());
    store.put_blob_chunk(&stale, 0, &piece, false).unwrap();
    store.put_blob_chunk(&fresh, 0, &piece, false).unwrap();
    let part = |sha: &Sha256| {
        dir.path()
            .join("inputs")
            .join(format!("{}.part", sha.to_hex()))
    };
    let now = std::time::SystemTime::now();
    let hour = std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(part(&stale))
        .unwrap()
        .set_modified(now - 2 * hour)
        .unwrap();
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut p = policy();
    p.uploads_stale_ms = 3_600_000;
    let mut cur = SweepCursor::default();
    let swept = store.sweep(&p, now_ms, &none(), &mut cur).unwrap();
    assert_eq!(swept.uploads, 1, "{swept:?}");
    assert!(!part(&stale).exists(), "the stale upload is removed");
    assert!(part(&fresh).exists(), "an upload in progress stays");
    // The fresh one goes on where it stopped.
    let done = store
        .put_blob_chunk(&fresh, piece.len() as u64, b"end", true)
        .unwrap();
    assert!(done.complete);
    assert_eq!(
        store.blob_len(&fresh).unwrap(),
        Some(piece.len() as u64 + 3)
    );
}
