use fabric_proto::{QueuedRecord, Sha256, TaskId, TaskRecord, TaskSpec, TaskState};

use crate::live_key;
use crate::testing::{reopen, temp_store};

fn record(seq: u64) -> TaskRecord {
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.trace = Some(format!("job-{seq}"));
    TaskRecord::queued(TaskId::new(), spec, seq, 1)
}

fn queued(store: &crate::Store) -> Vec<QueuedRecord> {
    let mut out = Vec::new();
    store.each_queued(|q| q, |q| out.push(q)).unwrap();
    // In no particular order: the readers walk halves of the index.
    out.sort_by_key(|q| q.seq);
    out
}

/// The summaries alone answer a restart: with every record made
/// unreadable, the read still gives each task as its record says.
#[test]
fn queued_tasks_are_read_from_the_index_alone() {
    let (dir, store) = temp_store();
    let mut recs: Vec<_> = (1..=10_000).map(record).collect();
    store.save_tasks(&recs).unwrap();
    // A later write of one (a retry's lease) is what its summary says.
    recs[7].attempt = 2;
    recs[7].state = TaskState::Running;
    store.save_task(&recs[7]).unwrap();
    let expected: Vec<QueuedRecord> = recs.iter().map(QueuedRecord::of).collect();
    for r in &recs {
        store
            .tasks
            .insert(r.id.as_bytes(), store.enc("task", &"damaged").unwrap())
            .unwrap();
    }
    assert_eq!(queued(&store), expected);
    let mut whole = 0;
    let read = store.each_live(|r: &TaskRecord| r.state, |_| whole += 1);
    assert!(read.is_err(), "the records themselves are unreadable");
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(queued(&store), expected, "after a reopen");
}

/// Summaries written in the older map form (before the array form) are
/// read as they are: with the records unreadable, they alone answer.
#[test]
fn summaries_in_the_older_map_form_still_read() {
    let (_dir, store) = temp_store();
    let recs: Vec<_> = (1..=50).map(record).collect();
    store.save_tasks(&recs).unwrap();
    let expected: Vec<QueuedRecord> = recs.iter().map(QueuedRecord::of).collect();
    for (r, q) in recs.iter().zip(&expected) {
        let map = fabric_proto::to_cbor(q).unwrap();
        assert!(matches!(map[0], 0xa0..=0xbf), "a map");
        store
            .live
            .insert(live_key(r), store.crypt().seal(b"queued", &map))
            .unwrap();
        store
            .tasks
            .insert(r.id.as_bytes(), store.enc("task", &"damaged").unwrap())
            .unwrap();
    }
    assert_eq!(queued(&store), expected);
}

/// An index entry from before summaries (an empty value, or one a rewrap
/// sealed empty) is read from its record, and so is one whose summary does
/// not open or decode: the record decides, nothing is lost.
#[test]
fn entries_without_a_summary_are_read_from_their_records() {
    let (_dir, store) = temp_store();
    let recs: Vec<_> = (1..=3).map(record).collect();
    store.save_tasks(&recs).unwrap();
    let expected: Vec<QueuedRecord> = recs.iter().map(QueuedRecord::of).collect();
    store.live.insert(live_key(&recs[0]), &[][..]).unwrap();
    store
        .live
        .insert(live_key(&recs[1]), store.crypt().seal(b"queued", &[]))
        .unwrap();
    assert_eq!(queued(&store), expected);

    store.live.insert(live_key(&recs[2]), &b"junk"[..]).unwrap();
    assert_eq!(queued(&store), expected);
    store
        .live
        .insert(live_key(&recs[2]), store.crypt().seal(b"queued", b"\xff"))
        .unwrap();
    assert_eq!(queued(&store), expected);
}

/// The index is split in two for the readers wherever its keys fall: the
/// middle key lies between the first and the last, and every task comes
/// back once.
#[test]
fn every_task_comes_back_once_however_the_index_splits() {
    assert_eq!(
        super::middle_key(&[1, 0, 0, 0, 0, 0, 0, 0, 0], &[1, 0, 0, 0, 0, 0, 0, 0, 10]),
        [1, 0, 0, 0, 0, 0, 0, 0, 5]
    );
    assert_eq!(
        super::middle_key(&[0; 25], &[2, 255, 255, 255, 255, 255, 255, 255, 255]).len(),
        9
    );
    for (n, priorities) in [(1, 1), (2, 1), (5_000, 1), (5_000, 3)] {
        let (_dir, store) = temp_store();
        let recs: Vec<_> = (1..=n)
            .map(|i| {
                let mut r = record(i * 7);
                r.spec.priority = [
                    fabric_proto::Priority::High,
                    fabric_proto::Priority::Normal,
                    fabric_proto::Priority::Low,
                ][(i % priorities) as usize];
                r
            })
            .collect();
        store.save_tasks(&recs).unwrap();
        let mut expected: Vec<QueuedRecord> = recs.iter().map(QueuedRecord::of).collect();
        expected.sort_by_key(|q| q.seq);
        assert_eq!(
            queued(&store),
            expected,
            "{n} tasks, {priorities} priorities"
        );
    }
}
