use std::path::Path;

use super::keyring::{KeyError, Keyring, LOCAL_KEY_FILE, OperatorKey, Wrap};
use super::{OpenError, file, key_id};

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_sealed_value_opens_only_under_its_kind_and_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::open(dir.path(), None, true).unwrap();
    let c = ring.crypt();
    let sealed = c.seal(b"task", b"the plaintext marker");
    assert_eq!(key_id(&sealed), Some(1));
    assert!(
        !sealed
            .windows(b"marker".len())
            .any(|w| w == b"marker".as_slice())
    );
    assert_eq!(c.open(b"task", &sealed).unwrap(), b"the plaintext marker");
    assert!(matches!(
        c.open(b"result", &sealed),
        Err(OpenError::Tampered(1))
    ));
    let mut bent = sealed.clone();
    *bent.last_mut().unwrap() ^= 1;
    assert!(matches!(
        c.open(b"task", &bent),
        Err(OpenError::Tampered(1))
    ));
    assert!(matches!(
        c.open(b"task", b"\xa1plain"),
        Err(OpenError::NotSealed)
    ));
    assert_ne!(
        c.seal(b"task", b"same"),
        c.seal(b"task", b"same"),
        "a fresh nonce each time"
    );
}

#[test]
fn rotation_seals_new_values_with_the_new_key_and_keeps_the_old_for_reading() {
    let dir = tempfile::tempdir().unwrap();
    let op = OperatorKey::from_bytes([7u8; 32]);
    let ring = Keyring::open(dir.path(), Some(&op), true).unwrap();
    let old = ring.crypt().seal(b"result", b"old");
    assert_eq!(ring.rotate().unwrap(), 2);
    let new = ring.crypt().seal(b"result", b"new");
    assert_eq!((key_id(&old), key_id(&new)), (Some(1), Some(2)));
    drop(ring);
    let again = Keyring::open(dir.path(), Some(&op), true).unwrap();
    assert_eq!(again.state().active, 2);
    assert_eq!(again.crypt().open(b"result", &old).unwrap(), b"old");
    assert_eq!(again.crypt().open(b"result", &new).unwrap(), b"new");
}

#[test]
fn a_wrong_or_missing_key_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let op = OperatorKey::from_bytes([1u8; 32]);
    drop(Keyring::open(dir.path(), Some(&op), true).unwrap());
    let before = files(dir.path());
    let wrong =
        Keyring::open(dir.path(), Some(&OperatorKey::from_bytes([2u8; 32])), true).unwrap_err();
    assert!(
        matches!(&wrong, KeyError::Wrong { expected, .. } if *expected == op.fingerprint()),
        "{wrong}"
    );
    let missing = Keyring::open(dir.path(), None, false).unwrap_err();
    assert!(
        missing.to_string().contains("--key-file"),
        "says what to do: {missing}"
    );
    assert_eq!(files(dir.path()), before, "nothing on disk changed");
}

#[test]
fn a_local_keyring_moves_to_the_operator_key_the_first_time_one_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::open(dir.path(), None, true).unwrap();
    assert_eq!(ring.state().wrap, Wrap::Local);
    let sealed = ring.crypt().seal(b"task", b"kept");
    drop(ring);
    let op = OperatorKey::from_bytes([9u8; 32]);
    let ring = Keyring::open(dir.path(), Some(&op), true).unwrap();
    assert_eq!(
        ring.state().wrap,
        Wrap::Local,
        "adopted only once the store is locked"
    );
    ring.finish_open().unwrap();
    assert_eq!(ring.state().wrap, Wrap::Operator);
    let rotated = ring.rotate().unwrap();
    assert!(!dir.path().join(LOCAL_KEY_FILE).exists());
    assert_eq!(ring.crypt().open(b"task", &sealed).unwrap(), b"kept");
    drop(ring);
    assert!(matches!(
        Keyring::open(dir.path(), None, true),
        Err(KeyError::Missing { .. })
    ));
    // The key made after the move is wrapped by the operator key too.
    let again = Keyring::open(dir.path(), Some(&op), false).unwrap();
    assert_eq!(again.state().active, rotated);
    assert_eq!(again.crypt().open(b"task", &sealed).unwrap(), b"kept");
}

#[test]
fn sealed_files_read_back_by_range_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::open(dir.path(), None, true).unwrap();
    let c = ring.crypt();
    let chunk = fabric_proto::BLOB_CHUNK;
    let data: Vec<u8> = (0..2 * chunk + 1000).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("blob");
    let f = std::fs::File::create_new(&path).unwrap();
    file::write_all(c, &f, &data).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        file::sealed_len(data.len() as u64)
    );
    let f = std::fs::File::open(&path).unwrap();
    let total = data.len() as u64;
    for (off, len) in [
        (0, 10),
        (chunk as u64 - 5, 10),
        (0, total),
        (total - 3, 100),
        (total, 5),
    ] {
        let end = (off + len).min(total) as usize;
        assert_eq!(
            file::read_range(c, &f, off, len, total).unwrap(),
            &data[off as usize..end],
            "range {off}+{len}"
        );
    }
    let mut whole = Vec::new();
    file::for_each_segment(c, &f, total, |s| {
        whole.extend_from_slice(s);
        Ok(())
    })
    .unwrap();
    assert_eq!(whole, data);
}

#[test]
fn a_missing_keyring_of_an_existing_store_is_refused_not_made_again() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Keyring::open(dir.path(), None, false),
        Err(KeyError::NoKeyring { .. })
    ));
    assert_eq!(files(dir.path()), Vec::new(), "nothing was written");
}
