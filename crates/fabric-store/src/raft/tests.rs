use crate::command::tests::{sequence, view};
use crate::testing::{flush, reopen, temp_store, walk};

fn entry(i: u64) -> (u64, Vec<u8>) {
    (i, format!("entry {i}").into_bytes())
}

#[test]
fn the_log_appends_truncates_purges_and_survives_a_reopen_sealed() {
    let (dir, store) = temp_store();
    store
        .raft_append(&(1..=10).map(entry).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(
        store.raft_entries(3, 6).unwrap(),
        (3..6).map(entry).collect::<Vec<_>>()
    );
    store.raft_truncate(8).unwrap();
    assert_eq!(store.raft_last_entry().unwrap(), Some(entry(7)));
    store.raft_purge(2).unwrap();
    assert_eq!(store.raft_entries(0, 100).unwrap().first(), Some(&entry(3)));
    assert_eq!(store.raft_log_len(), 5);
    store.set_raft_meta("vote", Some(b"v1")).unwrap();
    flush(&store);
    drop(store);
    let store = reopen(dir.path());
    assert_eq!(
        store.raft_meta("vote").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(
        store.raft_entries(0, 100).unwrap(),
        (3..=7).map(entry).collect::<Vec<_>>()
    );
    store.set_raft_meta("vote", None).unwrap();
    assert_eq!(store.raft_meta("vote").unwrap(), None);
    // Nothing of an entry is on disk in plaintext.
    flush(&store);
    let mut found = false;
    for f in walk(dir.path()).into_iter().filter(|p| p.is_file()) {
        let bytes = std::fs::read(&f).unwrap();
        found |= bytes.windows(7).any(|w| w == b"entry 5");
    }
    assert!(!found, "a log entry is on disk in plaintext");
}

#[test]
fn a_snapshot_installed_on_another_replica_gives_the_same_state() {
    let (cmds, tasks) = sequence();
    let (_d1, one) = temp_store();
    let (_d2, two) = temp_store();
    for c in &cmds {
        one.apply(c).unwrap();
    }
    // The second replica holds something else first: the install
    // replaces it.
    two.apply(&cmds[0]).unwrap();
    two.raft_append(&[entry(1)]).unwrap();
    let snap = one.export_replicated().unwrap();
    two.import_replicated(&snap).unwrap();
    assert_eq!(view(&two, &tasks), view(&one, &tasks));
    assert_eq!(two.raft_log_len(), 1, "the install left the log alone");
    // A snapshot that does not decode changes nothing.
    let before = view(&two, &tasks);
    assert!(two.import_replicated(&snap[..snap.len() / 2]).is_err());
    assert_eq!(view(&two, &tasks), before);
}

#[test]
fn a_snapshot_carries_every_number_its_maker_gave_out() {
    let (_d1, one) = temp_store();
    let (_d2, two) = temp_store();
    // Numbers given out (a leader's own events), nothing applied yet.
    let mut last = 0;
    for _ in 0..1_000 {
        last = one.next_seq().unwrap();
    }
    let ev = crate::StoredEvent {
        at_ms: 1,
        task: None,
        kind: crate::EventKind::TokenCreated,
        detail: "t".into(),
        actor: None,
    };
    // The maker applies its own number (as a leader does its entries).
    let mine = one.next_seq().unwrap();
    assert!(mine > last);
    one.apply(&crate::Command::Events(vec![(mine, ev)]))
        .unwrap();
    two.import_replicated(&one.export_replicated().unwrap())
        .unwrap();
    assert!(
        two.next_seq().unwrap() > mine,
        "the installer reuses a number"
    );
    // And so does a restart of the maker (the mark is kept, not only in
    // memory).
    let dir = _d1.path().to_owned();
    flush(&one);
    drop(one);
    let one = reopen(&dir);
    assert!(one.next_seq().unwrap() > mine);
}
