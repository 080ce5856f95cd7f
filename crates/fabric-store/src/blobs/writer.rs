//! Blobs written as their bytes arrive (REST uploads): into a file of
//! their own beside the chunked blobs, hashed on the way, so that an
//! upload costs the dispatcher a buffer of memory and not its whole body
//! (24 concurrent 64 MiB uploads held 1.6 GiB: issue 20, item 10).
//!
//! The file is `inputs/upload-<pid>-<n>.part` until [`BlobWriter::finish`]
//! makes it durable and renames it to `inputs/<sha>` (or drops it when
//! that blob is already stored); a writer dropped before then removes its
//! file, and one a crash left behind is swept with the other stale
//! `*.part` files.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use fabric_proto::{BlobRef, Sha256, Sha256Hasher};

use crate::{Result, Store};

/// A blob being written piece by piece.
#[derive(Debug)]
pub struct BlobWriter {
    store: Store,
    file: File,
    /// The file being written; `None` once it is sealed or read back.
    path: Option<PathBuf>,
    hasher: Sha256Hasher,
    len: u64,
}

impl Store {
    /// A writer for a blob whose bytes arrive piece by piece.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self
            .inputs_dir
            .join(format!("upload-{}-{n}.part", std::process::id()));
        let file = File::create(&path)?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            path: Some(path),
            hasher: Sha256::hasher(),
            len: 0,
        })
    }
}

impl BlobWriter {
    /// Appends the next piece.
    pub fn write(&mut self, piece: &[u8]) -> Result<()> {
        self.file.write_all(piece)?;
        self.hasher.update(piece);
        self.len += piece.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the bytes durable and stores them as a chunked blob (read back
    /// by range, like a chunked input); its reference.
    pub fn finish(mut self) -> Result<BlobRef> {
        let blob = BlobRef {
            sha: std::mem::replace(&mut self.hasher, Sha256::hasher()).finish(),
            len: self.len,
        };
        let Some(path) = self.path.take() else {
            return Ok(blob);
        };
        self.file.sync_all()?;
        let _sealing = self.store.lock_chunks();
        if self.store.has_blob(&blob.sha)? {
            fs::remove_file(&path)?;
            return Ok(blob);
        }
        fs::rename(&path, self.store.piece_path(&blob.sha, false))?;
        self.store
            .chunked
            .insert(blob.sha.as_bytes(), &blob.len.to_be_bytes())?;
        Ok(blob)
    }

    /// The bytes written, read back whole, and the file removed (a module,
    /// which is checked in memory and stored whole).
    pub fn into_bytes(self) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.into_reader()?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The bytes written, to be read once from the start through the
    /// returned handle; the file is removed at once (a REST task's JSON,
    /// parsed from it).
    pub fn into_reader(mut self) -> Result<File> {
        let Some(path) = self.path.take() else {
            return Err(std::io::Error::other("the upload was already sealed").into());
        };
        let file = File::open(&path);
        fs::remove_file(&path)?;
        Ok(file?)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Err(e) = fs::remove_file(&path)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove an unfinished upload");
        }
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::{BLOB_CHUNK, BlobRef};

    use crate::testing::temp_store;

    fn parts(store: &crate::Store) -> Vec<String> {
        std::fs::read_dir(&store.inputs_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".part"))
            .collect()
    }

    #[test]
    fn a_blob_written_in_pieces_is_stored_under_its_digest() {
        let (_dir, store) = temp_store();
        let data: Vec<u8> = (0..3 * BLOB_CHUNK / 2).map(|i| (i % 251) as u8).collect();
        let mut w = store.blob_writer().unwrap();
        for piece in data.chunks(1000) {
            w.write(piece).unwrap();
        }
        assert!(
            !store.has_blob(&BlobRef::of(&data).sha).unwrap(),
            "not before finish"
        );
        let blob = w.finish().unwrap();
        assert_eq!(blob, BlobRef::of(&data));
        let (back, total) = store
            .blob_range(&blob.sha, 0, data.len() as u64)
            .unwrap()
            .unwrap();
        assert_eq!((back, total), (data.clone(), data.len() as u64));
        assert!(parts(&store).is_empty(), "{:?}", parts(&store));

        // The same bytes again: one copy, no file left behind.
        let mut again = store.blob_writer().unwrap();
        again.write(&data).unwrap();
        assert_eq!(again.finish().unwrap(), blob);
        assert!(parts(&store).is_empty());
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write(b"half an upload").unwrap();
        assert_eq!(parts(&store).len(), 1);
        drop(w);
        assert!(parts(&store).is_empty());
        assert!(!store.has_blob(&BlobRef::of(b"half an upload").sha).unwrap());
    }

    #[test]
    fn a_reader_reads_what_was_written_from_a_file_already_gone() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write(b"{\"args\": []}").unwrap();
        let mut file = w.into_reader().unwrap();
        assert!(parts(&store).is_empty());
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "{\"args\": []}");
    }

    #[test]
    fn a_module_is_read_back_whole_and_not_kept_as_a_file() {
        let (_dir, store) = temp_store();
        let mut w = store.blob_writer().unwrap();
        w.write(b"\0asm").unwrap();
        w.write(b"\x01\0\0\0").unwrap();
        assert_eq!(w.len(), 8);
        assert_eq!(w.into_bytes().unwrap(), b"\0asm\x01\0\0\0");
        assert!(parts(&store).is_empty());
        assert!(
            !store
                .has_blob(&BlobRef::of(b"\0asm\x01\0\0\0").sha)
                .unwrap()
        );
    }
}
