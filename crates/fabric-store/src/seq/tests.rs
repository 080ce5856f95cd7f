use fabric_proto::{Sha256, TaskId, TaskRecord, TaskSpec};

use crate::testing::{flush, reopen, temp_store};
use crate::{EventKind, StoredEvent};

fn event() -> StoredEvent {
    StoredEvent {
        at_ms: 1,
        kind: EventKind::Submitted,
        task: None,
        detail: String::new(),
        actor: None,
    }
}

#[test]
fn numbers_after_a_reopen_are_above_every_stored_task_and_event() {
    let (dir, store) = temp_store();
    let mut last = 0;
    for _ in 0..10_000 {
        let n = store.next_seq().unwrap();
        assert!(n > last, "{n} after {last}");
        last = n;
    }
    // The last number given went to a task, the one before to nothing.
    let rec = TaskRecord::queued(TaskId::new(), TaskSpec::wasm(Sha256::of(b"m")), last, 1);
    store.save_task(&rec).unwrap();
    flush(&store);
    drop(store);
    let store = reopen(dir.path());
    let after_task = store.next_seq().unwrap();
    assert!(
        after_task > last,
        "{after_task} reused a stored task's {last}"
    );

    // An event's number is its key.
    for _ in 0..5_000 {
        store.next_seq().unwrap();
    }
    store.append_event(&event()).unwrap();
    let newest = store.next_seq().unwrap() - 1;
    flush(&store);
    drop(store);
    let store = reopen(dir.path());
    let after_event = store.next_seq().unwrap();
    assert!(
        after_event > newest,
        "{after_event} reused an event's {newest}"
    );
}
