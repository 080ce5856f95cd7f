//! Blobs: content-addressed bytes keyed by their sha256.
//!
//! Modules arrive in one frame and live whole in `blobs`. Task inputs over
//! the inline size arrive in [`BLOB_CHUNK`] pieces and live as pieces in
//! `chunks` (sha + piece index), with their length in `chunked` once the
//! last piece made them whole and their digest checked; until then they are
//! invisible. Either kind is read back by range.

use fabric_proto::{BLOB_CHUNK, BlobRef, Sha256};

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

/// Where a chunked upload stands after one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkProgress {
    /// Bytes stored so far.
    pub received: u64,
    /// The blob is whole and checked.
    pub complete: bool,
}

fn chunk_key(sha: &Sha256, index: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(sha.as_bytes());
    k[32..].copy_from_slice(&index.to_be_bytes());
    k
}

impl Store {
    /// Stores a blob under its sha256 (no-op when present).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Sha256> {
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

    /// Whether a blob is stored, whole or chunked (and complete).
    pub fn has_blob(&self, sha: &Sha256) -> Result<bool> {
        Ok(self.blob_len(sha)?.is_some())
    }

    /// A stored blob's length.
    pub fn blob_len(&self, sha: &Sha256) -> Result<Option<u64>> {
        if let Some(len) = self.chunked_len(sha)? {
            return Ok(Some(len));
        }
        Ok(self.blobs.get(sha.as_bytes())?.map(|v| v.len() as u64))
    }

    fn chunked_len(&self, sha: &Sha256) -> Result<Option<u64>> {
        Ok(self.chunked.get(sha.as_bytes())?.and_then(|v| {
            let b: [u8; 8] = v.as_ref().try_into().ok()?;
            Some(u64::from_be_bytes(b))
        }))
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
        if offset % step != 0 || bytes.len() > BLOB_CHUNK || (!last && !full) {
            return Err(ChunkError::Misplaced {
                offset,
                len: bytes.len(),
            });
        }
        let index = offset / step;
        if index > 0 && !self.chunks.contains_key(chunk_key(sha, index - 1))? {
            let expected = self.stored_pieces(sha)? * step;
            return Err(ChunkError::Gap { offset, expected });
        }
        self.chunks.insert(chunk_key(sha, index), bytes)?;
        let received = offset + bytes.len() as u64;
        if !last {
            return Ok(ChunkProgress {
                received,
                complete: false,
            });
        }
        self.seal(sha, index, received)?;
        Ok(ChunkProgress {
            received,
            complete: true,
        })
    }

    /// Pieces stored in order from the first.
    fn stored_pieces(&self, sha: &Sha256) -> Result<u64> {
        let mut n = 0;
        while self.chunks.contains_key(chunk_key(sha, n))? {
            n += 1;
        }
        Ok(n)
    }

    /// Checks pieces `0..=last_index` against `sha` and marks the blob whole.
    fn seal(&self, sha: &Sha256, last_index: u64, len: u64) -> Result<(), ChunkError> {
        let mut hasher = Sha256::hasher();
        for index in 0..=last_index {
            match self.chunks.get(chunk_key(sha, index))? {
                Some(piece) => hasher.update(&piece),
                None => {
                    return Err(ChunkError::Gap {
                        offset: last_index * BLOB_CHUNK as u64,
                        expected: index * BLOB_CHUNK as u64,
                    });
                }
            }
        }
        let actual = hasher.finish();
        if actual != *sha {
            self.drop_pieces(sha)?;
            return Err(ChunkError::Mismatch {
                expected: *sha,
                actual,
            });
        }
        // Pieces past the last (from an earlier, longer upload under the
        // same wrong name) cannot exist: a mismatch drops them all.
        self.chunked.insert(sha.as_bytes(), &len.to_be_bytes())?;
        Ok(())
    }

    fn drop_pieces(&self, sha: &Sha256) -> Result<()> {
        for key in self.chunks.scan_prefix(sha.as_bytes()).keys() {
            self.chunks.remove(key?)?;
        }
        Ok(())
    }

    /// Stores `bytes` as a chunked blob (an input that arrived inline but
    /// is over the inline size); returns its reference.
    pub fn put_chunked(&self, bytes: &[u8]) -> Result<BlobRef> {
        let blob = BlobRef::of(bytes);
        if self.chunked_len(&blob.sha)?.is_some() {
            return Ok(blob);
        }
        for (index, piece) in bytes.chunks(BLOB_CHUNK).enumerate() {
            self.chunks
                .insert(chunk_key(&blob.sha, index as u64), piece)?;
        }
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
        let end = offset.saturating_add(len).min(total);
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let step = BLOB_CHUNK as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / step;
            let Some(piece) = self.chunks.get(chunk_key(sha, index))? else {
                return Err(StoreError::Corrupt {
                    what: "blob piece",
                    source: fabric_proto::CodecError::Decode(format!(
                        "piece {index} of blob {sha} is missing"
                    )),
                });
            };
            let from = (pos - index * step) as usize;
            let to = ((end - index * step) as usize).min(piece.len());
            out.extend_from_slice(&piece[from..to]);
            pos = index * step + to as u64;
        }
        Ok(Some((out, total)))
    }
}

#[cfg(test)]
mod tests;
