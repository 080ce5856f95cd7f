//! Blob files in a group of dispatchers: a chunked blob (a task's input, a
//! file for a native task) made whole on the leader goes to the others
//! through the log, one piece per entry, before its upload is answered.
//! One piece at a time is read and in flight per blob, so a large upload
//! holds one piece in memory, not the blob.

use fabric_proto::{BLOB_CHUNK, BlobRef};
use fabric_store::{Command, StoreError};

use super::Ledger;

impl Ledger {
    /// Makes the chunked blob `blob`, whole in this member's store, durable
    /// on a majority of the group (nothing to do for a single
    /// dispatcher: its store is the only one).
    pub(crate) async fn replicate_chunked(&self, blob: &BlobRef) -> Result<(), StoreError> {
        let Self::Raft { store, .. } = self else {
            return Ok(());
        };
        // Carried whole once already (a second upload of the same bytes).
        if store.blob_replicated(&blob.sha)? {
            return Ok(());
        }
        let proposer = self.proposer();
        let mut offset = 0u64;
        loop {
            let len = (blob.len - offset).min(BLOB_CHUNK as u64);
            let (bytes, _) = store.blob_range(&blob.sha, offset, len)?.ok_or_else(|| {
                StoreError::Io(std::io::Error::other(format!(
                    "blob {} went missing from this dispatcher's disk while it was being copied to the others",
                    blob.sha
                )))
            })?;
            let last = offset + len >= blob.len;
            proposer
                .commit(Command::BlobPiece {
                    sha: blob.sha,
                    offset,
                    last,
                    bytes,
                })
                .await?;
            if last {
                return Ok(());
            }
            offset += len;
        }
    }
}
