//! Whole and chunked blobs.

use fabric_proto::{BLOB_CHUNK, BlobRef, Sha256};

use super::ChunkError;
use crate::testing::temp_store;

/// Bytes that do not repeat piece to piece.
fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

#[test]
fn blobs_are_content_addressed() {
    let (_dir, store) = temp_store();
    let sha = store.put_blob(b"module bytes").unwrap();
    assert_eq!(sha, Sha256::of(b"module bytes"));
    assert!(store.has_blob(&sha).unwrap());
    assert_eq!(store.blob(&sha).unwrap().unwrap(), b"module bytes");
    assert!(store.blob(&Sha256::of(b"other")).unwrap().is_none());
    assert!(!store.has_blob(&Sha256::of(b"other")).unwrap());
    let (part, total) = store.blob_range(&sha, 7, 100).unwrap().unwrap();
    assert_eq!((part.as_slice(), total), (&b"bytes"[..], 12));
}

#[test]
fn storing_a_blob_twice_keeps_one_copy() {
    let (_dir, store) = temp_store();
    let a = store.put_blob(b"same").unwrap();
    let b = store.put_blob(b"same").unwrap();
    assert_eq!(a, b);
    assert_eq!(store.blobs.len(), 1);
}

#[test]
fn a_chunked_upload_is_visible_only_once_whole() {
    let (_dir, store) = temp_store();
    let data = bytes(2 * BLOB_CHUNK + 100);
    let blob = BlobRef::of(&data);
    let pieces: Vec<_> = data.chunks(BLOB_CHUNK).collect();
    let p = store
        .put_blob_chunk(&blob.sha, 0, pieces[0], false)
        .unwrap();
    assert_eq!((p.received, p.complete), (BLOB_CHUNK as u64, false));
    let step = BLOB_CHUNK as u64;
    store
        .put_blob_chunk(&blob.sha, step, pieces[1], false)
        .unwrap();
    // Sent again (a retried upload): harmless.
    store
        .put_blob_chunk(&blob.sha, step, pieces[1], false)
        .unwrap();
    assert!(!store.has_blob(&blob.sha).unwrap());
    assert!(store.blob_range(&blob.sha, 0, 10).unwrap().is_none());
    let p = store
        .put_blob_chunk(&blob.sha, 2 * step, pieces[2], true)
        .unwrap();
    assert_eq!((p.received, p.complete), (blob.len, true));
    assert_eq!(store.blob_len(&blob.sha).unwrap(), Some(blob.len));
    // Ranges across piece boundaries read back the same bytes.
    let mut back = Vec::new();
    let mut offset = 0;
    while offset < blob.len {
        let (part, total) = store
            .blob_range(&blob.sha, offset, 700_001)
            .unwrap()
            .unwrap();
        assert_eq!(total, blob.len);
        offset += part.len() as u64;
        back.extend(part);
    }
    assert_eq!(back, data);
    let (tail, _) = store
        .blob_range(&blob.sha, blob.len - 3, 100)
        .unwrap()
        .unwrap();
    assert_eq!(tail, data[data.len() - 3..]);
    // A piece for a whole blob is ignored.
    let p = store.put_blob_chunk(&blob.sha, 0, b"junk", true).unwrap();
    assert!(p.complete);
}

#[test]
fn misplaced_missing_and_wrong_pieces_are_refused() {
    let (_dir, store) = temp_store();
    let data = bytes(BLOB_CHUNK + 10);
    let blob = BlobRef::of(&data);
    let err = store
        .put_blob_chunk(&blob.sha, 5, &data[..10], true)
        .unwrap_err();
    assert!(
        matches!(err, ChunkError::Misplaced { offset: 5, .. }),
        "{err}"
    );
    let err = store
        .put_blob_chunk(&blob.sha, 0, &data[..10], false)
        .unwrap_err();
    assert!(matches!(err, ChunkError::Misplaced { .. }), "{err}");
    let step = BLOB_CHUNK as u64;
    let err = store
        .put_blob_chunk(&blob.sha, step, &data[BLOB_CHUNK..], true)
        .unwrap_err();
    assert!(matches!(err, ChunkError::Gap { expected: 0, .. }), "{err}");
    // Pieces that do not hash to the name are dropped.
    store
        .put_blob_chunk(&blob.sha, 0, &data[..BLOB_CHUNK], false)
        .unwrap();
    let err = store
        .put_blob_chunk(&blob.sha, step, b"other tail", true)
        .unwrap_err();
    assert!(matches!(err, ChunkError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("upload it again"), "{err}");
    assert!(!store.has_blob(&blob.sha).unwrap());
    assert!(!store.piece_path(&blob.sha, true).exists());
}

#[test]
fn inline_bytes_stored_as_chunks_read_back() {
    let (_dir, store) = temp_store();
    let data = bytes(BLOB_CHUNK + 1);
    let blob = store.put_chunked(&data).unwrap();
    assert_eq!(blob, BlobRef::of(&data));
    assert!(store.piece_path(&blob.sha, false).exists());
    let (part, total) = store
        .blob_range(&blob.sha, BLOB_CHUNK as u64 - 1, 2)
        .unwrap()
        .unwrap();
    assert_eq!(part, data[BLOB_CHUNK - 1..]);
    assert_eq!(total, blob.len);
    assert_eq!(store.put_chunked(&data).unwrap(), blob);
}

#[test]
fn chunked_blobs_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = bytes(BLOB_CHUNK + 3);
    let blob = {
        let store = crate::testing::reopen(dir.path());
        let blob = store.put_chunked(&data).unwrap();
        crate::testing::flush(&store);
        blob
    };
    let store = crate::testing::reopen(dir.path());
    assert_eq!(store.blob_len(&blob.sha).unwrap(), Some(blob.len));
    let (part, _) = store.blob_range(&blob.sha, 0, blob.len).unwrap().unwrap();
    assert_eq!(part, data);
}

#[test]
fn concurrent_uploads_of_the_same_content_all_succeed() {
    // Clients staging the same header at once (a parallel build) upload the
    // same blob side by side; every one of them must end whole.
    let (_dir, store) = temp_store();
    for round in 0..20u8 {
        let mut data = bytes(BLOB_CHUNK + 100);
        data[0] = round;
        let blob = BlobRef::of(&data);
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let store = store.clone();
                let data = data.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    if i % 3 == 0 {
                        // The dispatcher's own path for an inline input.
                        return store
                            .put_chunked(&data)
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                    }
                    let mut last = None;
                    for (n, piece) in data.chunks(BLOB_CHUNK).enumerate() {
                        let end = (n + 1) * BLOB_CHUNK >= data.len();
                        last = Some(
                            store
                                .put_blob_chunk(&blob.sha, (n * BLOB_CHUNK) as u64, piece, end)
                                .map_err(|e| e.to_string())?,
                        );
                        if last.is_some_and(|p| p.complete) {
                            break;
                        }
                    }
                    assert!(last.is_some_and(|p| p.complete));
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let (got, len) = store
            .blob_range(&blob.sha, 0, data.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!(len, data.len() as u64);
        assert_eq!(got, data);
    }
}
