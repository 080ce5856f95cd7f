//! Tests of the data at rest across the store's rooms: nothing of a task in
//! plaintext on disk, the rewrap, backups, and the upgrade from the
//! plaintext format.

use std::path::Path;

use fabric_proto::{
    SecretValue, Sha256, TaskId, TaskOutcome, TaskRecord, TaskSpec, TaskState, TaskStatus,
};

use crate::testing::{flush, reopen};
use crate::{EventKind, OperatorKey, PLAINTEXT, Store, StoreError, StoredEvent};

const MARKER: &[u8] = b"MARKER-7f3a9c";

fn marked_record() -> TaskRecord {
    let m = String::from_utf8_lossy(MARKER).into_owned();
    let mut spec = TaskSpec::wasm(Sha256::of(b"m"));
    spec.args = vec![format!("--word={m}")];
    spec.env = vec![("GREETING".into(), m.clone())];
    spec.input = format!("input {m}").into_bytes();
    spec.secrets = vec![("TOKEN".into(), SecretValue::new(format!("secret {m}")))];
    TaskRecord::queued(TaskId::new(), spec, 1, 1)
}

fn marked_outcome() -> TaskOutcome {
    let mut o = TaskOutcome::rejected("x");
    o.status = TaskStatus::Succeeded;
    o.stdout = format!("output {}", String::from_utf8_lossy(MARKER)).into_bytes();
    o
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        if bytes.windows(needle.len()).any(|w| w == needle) {
            hits.push(entry.display().to_string());
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A store holding a marked task at each stage, a chunked input, an
/// upload and an event.
fn fill(store: &Store) -> (TaskRecord, fabric_proto::BlobRef) {
    let rec = marked_record();
    store.save_task(&rec).unwrap();
    let mut done = rec.clone();
    done.state = TaskState::Done;
    done.status = Some(TaskStatus::Succeeded);
    assert!(store.record_result(&done, &marked_outcome()).unwrap());
    let mut big = vec![b'x'; (fabric_proto::BLOB_CHUNK * 2) + 77];
    big[fabric_proto::BLOB_CHUNK - 3..fabric_proto::BLOB_CHUNK - 3 + MARKER.len()]
        .copy_from_slice(MARKER);
    let blob = store.put_chunked(&big).unwrap();
    let mut w = store.blob_writer().unwrap();
    w.write(b"uploaded ").unwrap();
    w.write(MARKER).unwrap();
    w.finish().unwrap();
    store
        .append_event(&StoredEvent {
            at_ms: 1,
            task: Some(rec.id),
            kind: EventKind::Recorded,
            detail: format!("said {}", String::from_utf8_lossy(MARKER)),
            actor: None,
        })
        .unwrap();
    flush(store);
    (rec, blob)
}

#[test]
fn nothing_a_task_brings_is_on_disk_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (rec, blob) = fill(&store);
    assert_eq!(files_holding(dir.path(), MARKER), Vec::<String>::new());
    // And it all reads back.
    let back = store.task(&rec.id).unwrap().unwrap();
    assert_eq!(back.spec.args, rec.spec.args);
    assert_eq!(
        store.result(&rec.id).unwrap().unwrap().stdout,
        marked_outcome().stdout
    );
    let (bytes, total) = store
        .blob_range(&blob.sha, fabric_proto::BLOB_CHUNK as u64 - 3, 13)
        .unwrap()
        .unwrap();
    assert_eq!((bytes.as_slice(), total), (MARKER, blob.len));
}

#[test]
fn a_finished_task_keeps_its_secrets_names_but_not_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (rec, _) = fill(&store);
    let back = store.task(&rec.id).unwrap().unwrap();
    assert_eq!(back.spec.secrets.len(), 1);
    assert_eq!(back.spec.secrets[0].0, "TOKEN");
    assert_eq!(back.spec.secrets[0].1.expose(), "");
}

#[test]
fn a_rewrap_leaves_everything_under_the_new_key_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let (rec, blob) = fill(&store);
    assert_eq!(
        store
            .key_census()
            .unwrap()
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(store.keyring().rotate().unwrap(), 2);
    store.begin_rewrap().unwrap();
    // Small steps, with a reopen midway: the pass resumes from its cursor.
    let first = store.rewrap_step(2).unwrap();
    assert!(!first.finished);
    drop(store);
    let store = reopen(dir.path());
    assert!(store.rewrap_pending().unwrap());
    let mut last = first;
    while !last.finished {
        last = store.rewrap_step(2).unwrap();
    }
    let census = store.key_census().unwrap();
    assert_eq!(
        census.keys().copied().collect::<Vec<_>>(),
        [2],
        "{census:?}"
    );
    assert_eq!(
        store.result(&rec.id).unwrap().unwrap().stdout,
        marked_outcome().stdout
    );
    assert_eq!(
        store.blob_range(&blob.sha, 0, blob.len).unwrap().unwrap().1,
        blob.len
    );
    assert!(!store.rewrap_pending().unwrap());
}

#[test]
fn a_backup_restores_into_an_empty_dir_and_refuses_a_full_one() {
    let dir = tempfile::tempdir().unwrap();
    let key = OperatorKey::from_bytes([5; 32]);
    let store = Store::open_keyed(&dir.path().join("store"), Some(&key)).unwrap();
    let (rec, blob) = fill(&store);
    std::fs::write(dir.path().join("node.key"), "node").unwrap();
    let file = dir.path().join("b.fbk");
    let summary = store
        .backup(&file, &[("node.key", &dir.path().join("node.key"))], |_| {})
        .unwrap();
    assert_eq!((summary.tasks, summary.results, summary.files), (1, 1, 2));
    assert!(
        store.backup(&file, &[], |_| {}).is_err(),
        "an existing file is refused"
    );
    assert!(
        files_holding(dir.path(), MARKER).is_empty(),
        "the backup is sealed too"
    );

    let full = tempfile::tempdir().unwrap();
    std::fs::write(full.path().join("x"), "x").unwrap();
    assert!(matches!(
        crate::restore(&file, full.path()),
        Err(crate::RestoreError::NotEmpty(_))
    ));

    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("data");
    assert_eq!(crate::restore(&file, &into).unwrap(), summary);
    assert_eq!(std::fs::read(into.join("node.key")).unwrap(), b"node");
    assert!(
        matches!(Store::open(&into.join("store")), Err(StoreError::Key(_))),
        "the restored keyring needs the same operator key"
    );
    let restored = Store::open_keyed(&into.join("store"), Some(&key)).unwrap();
    assert_eq!(restored.task(&rec.id).unwrap().unwrap().id, rec.id);
    let (bytes, _) = restored
        .blob_range(&blob.sha, 0, blob.len)
        .unwrap()
        .unwrap();
    assert_eq!(bytes.len() as u64, blob.len);

    let mut cut = std::fs::read(&file).unwrap();
    cut.truncate(cut.len() - 10);
    std::fs::write(&file, &cut).unwrap();
    let t2 = tempfile::tempdir().unwrap();
    assert!(matches!(
        crate::restore(&file, &t2.path().join("d")),
        Err(crate::RestoreError::Bad { .. })
    ));
    assert!(
        !t2.path().join("d").exists(),
        "a failed restore leaves nothing"
    );
}

/// A store as Fabric wrote it before encryption: plaintext CBOR in the
/// trees and a plaintext input file, no keyring.
fn plaintext_store(dir: &Path) -> (TaskRecord, Vec<u8>) {
    let rec = marked_record();
    let db = sled::open(dir).unwrap();
    db.open_tree("tasks")
        .unwrap()
        .insert(rec.id.as_bytes(), fabric_proto::to_cbor(&rec).unwrap())
        .unwrap();
    let input = [MARKER, b" and more"].concat();
    let sha = Sha256::of(&input);
    std::fs::create_dir_all(dir.join("inputs")).unwrap();
    std::fs::write(dir.join("inputs").join(sha.to_hex()), &input).unwrap();
    db.open_tree("chunked")
        .unwrap()
        .insert(sha.as_bytes(), &(input.len() as u64).to_be_bytes())
        .unwrap();
    db.flush().unwrap();
    (rec, input)
}

#[test]
fn a_plaintext_store_is_backed_up_then_sealed_at_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let (rec, input) = {
        let made = plaintext_store(&dir);
        std::thread::sleep(std::time::Duration::from_millis(300));
        made
    };
    let store = reopen(&dir);
    assert_eq!(store.format().unwrap(), Some(crate::FORMAT));
    assert_eq!(
        store.task(&rec.id).unwrap().unwrap().spec.args,
        rec.spec.args
    );
    let sha = Sha256::of(&input);
    assert_eq!(store.blob_range(&sha, 0, 100).unwrap().unwrap().0, input);
    assert!(!store.key_census().unwrap().contains_key(&PLAINTEXT));
    flush(&store);
    let backups: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("format1-backup"))
        .collect();
    assert_eq!(
        backups.len(),
        1,
        "one copy of the old store, kept beside it"
    );
    assert!(
        files_holding(&dir, MARKER).is_empty(),
        "{:?}",
        files_holding(&dir, MARKER)
    );
}

#[test]
fn a_newer_format_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .meta
            .insert(crate::FORMAT_KEY, &99u32.to_be_bytes())
            .unwrap();
        flush(&store);
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let err = loop {
        match Store::open(dir.path()) {
            Err(StoreError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => break other.unwrap_err(),
        }
    };
    assert!(
        matches!(err, StoreError::NewerFormat { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn a_rotation_midway_through_a_rewrap_starts_the_pass_over_for_the_newest_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    fill(&store);
    store.keyring().rotate().unwrap();
    store.begin_rewrap().unwrap();
    // Part of the pass, under key 2; then key 3 comes.
    assert!(!store.rewrap_step(4).unwrap().finished);
    assert_eq!(store.keyring().rotate().unwrap(), 3);
    let mut p = store.rewrap_step(2).unwrap();
    while !p.finished {
        p = store.rewrap_step(2).unwrap();
    }
    let census = store.key_census().unwrap();
    assert_eq!(
        census.keys().copied().collect::<Vec<_>>(),
        [3],
        "{census:?}"
    );
}

#[test]
fn a_store_that_lost_its_keyring_is_refused_not_upgraded_or_rekeyed() {
    for lost_format_file in [false, true] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        {
            let store = Store::open(&dir).unwrap();
            fill(&store);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::remove_file(dir.join(crate::crypt::keyring::KEYRING_FILE)).unwrap();
        if lost_format_file {
            std::fs::remove_file(dir.join(crate::upgrade::FORMAT_FILE)).unwrap();
        }
        let before = walk(root.path());
        let err = loop {
            match Store::open(&dir) {
                Err(StoreError::Locked { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.unwrap_err(),
            }
        };
        assert!(
            matches!(err, StoreError::Key(crate::KeyError::NoKeyring { .. })),
            "{err}"
        );
        // (sled itself may write a snapshot file of its own when the
        // second case opens it to look: no data of the store changes.)
        let after: Vec<_> = walk(root.path())
            .into_iter()
            .filter(|p| {
                !p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("snap.")
            })
            .collect();
        assert_eq!(
            after, before,
            "no copy, no new keyring (format file lost: {lost_format_file})"
        );
    }
}
