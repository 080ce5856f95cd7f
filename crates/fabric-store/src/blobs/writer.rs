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
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use fabric_proto::{BLOB_CHUNK, BlobRef, Sha256, Sha256Hasher};

use crate::crypt::file as sealed;
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
    header: sealed::Header,
    /// The segment being filled (sealed once whole, or at the end).
    pending: Vec<u8>,
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
        let header = sealed::Header::new(self.crypt());
        header.write(&file)?;
        Ok(BlobWriter {
            store: self.clone(),
            file,
            path: Some(path),
            hasher: Sha256::hasher(),
            len: 0,
            header,
            pending: Vec::new(),
        })
    }
}

impl BlobWriter {
    /// Appends the next piece.
    pub fn write(&mut self, mut piece: &[u8]) -> Result<()> {
        self.hasher.update(piece);
        while !piece.is_empty() {
            let take = (BLOB_CHUNK - self.pending.len()).min(piece.len());
            self.pending.extend_from_slice(&piece[..take]);
            self.len += take as u64;
            piece = &piece[take..];
            if self.pending.len() == BLOB_CHUNK {
                self.flush_segment()?;
            }
        }
        Ok(())
    }

    /// Seals and writes the segment being filled.
    fn flush_segment(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let index = (self.len - self.pending.len() as u64) / BLOB_CHUNK as u64;
        sealed::write_segment(
            self.store.crypt(),
            &self.file,
            &self.header,
            index,
            &self.pending,
        )?;
        self.pending.clear();
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
        if self.path.is_none() {
            return Ok(blob);
        }
        self.flush_segment()?;
        let Some(path) = self.path.take() else {
            return Ok(blob);
        };
        self.file.sync_all()?;
        let _sealing = self.store.lock_chunks();
        let _gate = self.store.gate();
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
        std::io::Read::read_to_end(&mut self.into_reader()?, &mut bytes)?;
        Ok(bytes)
    }

    /// The bytes written, to be read once from the start through the
    /// returned reader (which opens the sealed segments one by one); the
    /// file is removed at once (a REST task's JSON, parsed from it).
    pub fn into_reader(mut self) -> Result<BlobReader> {
        self.flush_segment()?;
        let Some(path) = self.path.take() else {
            return Err(std::io::Error::other("the upload was already sealed").into());
        };
        let file = File::open(&path);
        fs::remove_file(&path)?;
        Ok(BlobReader {
            store: self.store.clone(),
            file: file?,
            header: self.header,
            total: self.len,
            next: 0,
            buf: Vec::new(),
            pos: 0,
        })
    }
}

/// Reads a sealed upload from the start, one segment at a time.
#[derive(Debug)]
pub struct BlobReader {
    store: Store,
    file: File,
    header: sealed::Header,
    total: u64,
    /// The next segment to open.
    next: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl std::io::Read for BlobReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next * BLOB_CHUNK as u64 >= self.total {
                return Ok(0);
            }
            self.buf = sealed::read_segment(
                self.store.crypt(),
                &self.file,
                &self.header,
                self.next,
                self.total,
            )?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
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
