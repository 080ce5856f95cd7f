//! Blobs: content-addressed bytes keyed by their sha256.
//!
//! Modules arrive in one frame and live whole in `blobs`. Task inputs over
//! the inline size arrive in [`BLOB_CHUNK`] pieces and are written to a
//! file of their own beside sled (`<store>/inputs/<sha>.part`), renamed to
//! `<sha>` and given their length in the `chunked` tree once the last piece
//! made them whole and their digest checked; until then they are invisible.
//! Either kind is read back by range. REST uploads arrive as a stream and
//! are written as they come by a [`BlobWriter`] (`blobs/writer.rs`).
//!
//! Each file is sealed (AES-256-GCM, one segment per piece: see
//! `crypt/file.rs`); a piece is sealed as it arrives and read back by
//! opening the segments a range covers.
//!
//! Files, not sled values: sled 0.34 keeps large values it wrote in memory
//! beyond its cache cap (1,000 queued 8 MiB inputs held 8.8 GB of RSS in
//! the queue_scale bench), which is what issue 9 item 5 is about.

use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;

use fabric_proto::{BLOB_CHUNK, BlobRef, Sha256};

use crate::crypt::file as sealed;
use crate::{Result, Store, StoreError};

/// A piece of a chunked upload does not fit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The piece is not where a piece may start or is not the right size.
    #[error(
        "blob piece at offset {offset} of {len} bytes is misplaced: pieces start at multiples of {BLOB_CHUNK} bytes and all but the last are that long"
    )]
    Misplaced {
        /// Where it claims to start.
        offset: u64,
        /// Its length.
        len: usize,
    },
    /// An earlier piece is missing.
    #[error("blob piece at offset {offset} arrived before the piece at {expected}")]
    Gap {
        /// Where it claims to start.
        offset: u64,
        /// Where the next piece should start.
        expected: u64,
    },
    /// The pieces do not hash to the digest they were uploaded under; they
    /// are dropped.
    #[error("the uploaded blob hashes to {actual}, not {expected}; upload it again")]
    Mismatch {
        /// The digest named by the upload.
        expected: Sha256,
        /// What the pieces hash to.
        actual: Sha256,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for ChunkError {
    fn from(e: sled::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<std::io::Error> for ChunkError {
    fn from(e: std::io::Error) -> Self {
        Self::Store(e.into())
    }
}

/// Where a chunked upload stands after one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkProgress {
    /// Bytes stored so far.
    pub received: u64,
    /// The blob is whole and checked.
    pub complete: bool,
}

impl Store {
    /// Stores a blob under its sha256 (no-op when present).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Sha256> {
        let _gate = self.gate();
        let sha = Sha256::of(bytes);
        if !self.blobs.contains_key(sha.as_bytes())? {
            self.blobs.insert(sha.as_bytes(), bytes)?;
        }
        Ok(sha)
    }

    /// A whole blob's bytes (modules; chunked blobs are read by range).
    pub fn blob(&self, sha: &Sha256) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs.get(sha.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Whether a chunked blob went whole through a group's log (so a
    /// majority holds it), as opposed to being whole on this member only
    /// (its replication failed partway, say). Replicated state: in
    /// snapshots too.
    pub fn blob_replicated(&self, sha: &Sha256) -> Result<bool> {
        Ok(self
            .meta
            .contains_key(format!("{}{}", crate::BLOB_REPLICATED, sha.to_hex()))?)
    }

    pub(crate) fn mark_blob_replicated(&self, sha: &Sha256) -> Result<()> {
        let _gate = self.gate();
        self.meta
            .insert(format!("{}{}", crate::BLOB_REPLICATED, sha.to_hex()), &[])?;
        Ok(())
    }

    /// Whether a blob is stored, whole or chunked (and complete).
    pub fn has_blob(&self, sha: &Sha256) -> Result<bool> {
        Ok(self.blob_len(sha)?.is_some())
    }

    /// Whether a module is stored: uploaded as one and checked (a chunked
    /// blob, an input or a file, is not a module).
    pub fn has_module(&self, sha: &Sha256) -> Result<bool> {
        Ok(self.blobs.contains_key(sha.as_bytes())?)
    }

    /// A stored blob's length.
    pub fn blob_len(&self, sha: &Sha256) -> Result<Option<u64>> {
        if let Some(len) = self.chunked_len(sha)? {
            return Ok(Some(len));
        }
        Ok(self.blobs.get(sha.as_bytes())?.map(|v| v.len() as u64))
    }

    pub(crate) fn chunked_len(&self, sha: &Sha256) -> Result<Option<u64>> {
        Ok(self.chunked.get(sha.as_bytes())?.and_then(|v| {
            let b: [u8; 8] = v.as_ref().try_into().ok()?;
            Some(u64::from_be_bytes(b))
        }))
    }

    /// See `Store::chunks`.
    pub(crate) fn lock_chunks(&self) -> std::sync::MutexGuard<'_, ()> {
        self.chunks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn piece_path(&self, sha: &Sha256, part: bool) -> PathBuf {
        let name = if part {
            format!("{}.part", sha.to_hex())
        } else {
            sha.to_hex()
        };
        self.inputs_dir.join(name)
    }

    /// Stores one piece of a chunked upload (see [`ChunkError`] for the
    /// rules). Re-sending a stored piece is harmless; a piece for a blob
    /// already whole is ignored.
    pub fn put_blob_chunk(
        &self,
        sha: &Sha256,
        offset: u64,
        bytes: &[u8],
        last: bool,
    ) -> Result<ChunkProgress, ChunkError> {
        if let Some(len) = self.chunked_len(sha)? {
            return Ok(ChunkProgress {
                received: len,
                complete: true,
            });
        }
        let step = BLOB_CHUNK as u64;
        let full = bytes.len() == BLOB_CHUNK;
        if !offset.is_multiple_of(step) || bytes.len() > BLOB_CHUNK || (!last && !full) {
            return Err(ChunkError::Misplaced {
                offset,
                len: bytes.len(),
            });
        }
        // Pieces are written, checked and sealed under the chunk lock: two
        // uploads of one digest share `<sha>.part`, and one must never
        // write into the file the other just sealed.
        let _sealing = self.lock_chunks();
        if let Some(len) = self.chunked_len(sha)? {
            return Ok(ChunkProgress {
                received: len,
                complete: true,
            });
        }
        let path = self.piece_path(sha, true);
        let file = OpenOptions::new()
            .create(true)
            // Earlier pieces of this upload are kept.
            .truncate(false)
            .write(true)
            .read(true)
            .open(&path)?;
        let on_disk = file.metadata()?.len();
        let header = if on_disk < sealed::HEADER {
            let h = sealed::Header::new(self.crypt());
            h.write(&file)?;
            h
        } else {
            sealed::Header::read(&file)?
        };
        let have = sealed::full_segments(on_disk) * step;
        if offset > have {
            return Err(ChunkError::Gap {
                offset,
                expected: have,
            });
        }
        sealed::write_segment(self.crypt(), &file, &header, offset / step, bytes)?;
        let received = offset + bytes.len() as u64;
        if !last {
            return Ok(ChunkProgress {
                received,
                complete: false,
            });
        }
        file.set_len(sealed::sealed_len(received))?;
        self.seal(sha, file, received)?;
        Ok(ChunkProgress {
            received,
            complete: true,
        })
    }

    /// Checks the uploaded file against `sha`, makes it durable and marks
    /// the blob whole; a mismatch drops the file. Called with the chunk
    /// lock held.
    fn seal(&self, sha: &Sha256, file: File, len: u64) -> Result<(), ChunkError> {
        let _gate = self.gate();
        let mut hasher = Sha256::hasher();
        sealed::for_each_segment(self.crypt(), &file, len, |piece| {
            hasher.update(piece);
            Ok(())
        })?;
        let actual = hasher.finish();
        let part = self.piece_path(sha, true);
        if actual != *sha {
            fs::remove_file(&part)?;
            return Err(ChunkError::Mismatch {
                expected: *sha,
                actual,
            });
        }
        file.sync_all()?;
        // The caller holds the chunk lock.
        fs::rename(&part, self.piece_path(sha, false))?;
        self.chunked.insert(sha.as_bytes(), &len.to_be_bytes())?;
        Ok(())
    }

    /// Stores `bytes` as a chunked blob (an input that arrived inline but
    /// is over the inline size); returns its reference.
    pub fn put_chunked(&self, bytes: &[u8]) -> Result<BlobRef> {
        let blob = BlobRef::of(bytes);
        if self.chunked_len(&blob.sha)?.is_some() {
            return Ok(blob);
        }
        // A name of its own: a chunked upload of the same content may be
        // writing `<sha>.part` right now.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let part = self.inputs_dir.join(format!(
            "{}.{}-{n}.part",
            blob.sha.to_hex(),
            std::process::id()
        ));
        let file = File::create(&part)?;
        sealed::write_all(self.crypt(), &file, bytes)?;
        file.sync_all()?;
        // The chunk lock, then the gate: the one order every path takes.
        let _sealing = self.lock_chunks();
        let _gate = self.gate();
        if self.chunked_len(&blob.sha)?.is_some() {
            fs::remove_file(&part)?;
            return Ok(blob);
        }
        fs::rename(&part, self.piece_path(&blob.sha, false))?;
        self.chunked
            .insert(blob.sha.as_bytes(), &blob.len.to_be_bytes())?;
        Ok(blob)
    }

    /// Up to `len` bytes of a blob from `offset`, with the blob's length;
    /// `None` when no such blob is stored (or not yet whole).
    pub fn blob_range(
        &self,
        sha: &Sha256,
        offset: u64,
        len: u64,
    ) -> Result<Option<(Vec<u8>, u64)>> {
        let Some(total) = self.chunked_len(sha)? else {
            return Ok(self.blobs.get(sha.as_bytes())?.map(|whole| {
                let start = offset.min(whole.len() as u64) as usize;
                let end = offset.saturating_add(len).min(whole.len() as u64) as usize;
                (whole[start..end].to_vec(), whole.len() as u64)
            }));
        };
        let file = File::open(self.piece_path(sha, false))?;
        let out = sealed::read_range(self.crypt(), &file, offset, len, total)?;
        Ok(Some((out, total)))
    }
}

mod writer;

pub use writer::{BlobReader, BlobWriter};

#[cfg(test)]
mod tests;
