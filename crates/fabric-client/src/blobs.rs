//! Task inputs over the inline size go up as chunked blobs before the task
//! is submitted, so no frame carries more than one [`BLOB_CHUNK`] of them
//! and the dispatcher's scheduler holds only their digest.

use fabric_proto::wire::{Request, Response};
use fabric_proto::{BLOB_CHUNK, BlobRef, INLINE_INPUT_MAX, TaskSpec};

use crate::{Client, ClientError, unexpected};

impl Client {
    /// Uploads `input` as a chunked blob unless the dispatcher has it;
    /// returns its reference for [`TaskSpec::input_blob`].
    pub async fn upload_input(&self, input: &[u8]) -> Result<BlobRef, ClientError> {
        match self.upload_pieces(input).await {
            // A piece past the first refused: in a group, the leader
            // changed during the upload and the new one lacks the earlier
            // pieces ("arrived before the piece at ..."). Once more from
            // the start, where it asks first what the leader holds.
            Err((piece, ClientError::Remote(e)))
                if piece > 0 && e.code == fabric_proto::wire::ErrorCode::BadRequest =>
            {
                tracing::debug!(piece, error = %e.message, "a piece was refused; uploading again from the start");
                self.upload_pieces(input).await.map_err(|(_, e)| e)
            }
            other => other.map_err(|(_, e)| e),
        }
    }

    /// One upload, piece by piece; on failure, which piece failed.
    async fn upload_pieces(&self, input: &[u8]) -> Result<BlobRef, (usize, ClientError)> {
        let blob = BlobRef::of(input);
        match self.call(&Request::HasBlob { sha: blob.sha }).await {
            Ok(Response::HasBlob(true)) => return Ok(blob),
            Ok(Response::HasBlob(false)) => {}
            Ok(other) => return Err((0, unexpected(other))),
            Err(e) => return Err((0, e)),
        }
        let pieces = input.chunks(BLOB_CHUNK);
        let count = pieces.len();
        for (i, piece) in pieces.enumerate() {
            let last = i + 1 == count;
            let req = Request::PutBlobChunk {
                sha: blob.sha,
                offset: (i * BLOB_CHUNK) as u64,
                bytes: piece.to_vec(),
                last,
            };
            match self.call(&req).await.map_err(|e| (i, e))? {
                Response::BlobChunkStored { complete, .. } if complete == last => {}
                // The dispatcher already had it whole (another upload won).
                Response::BlobChunkStored { complete: true, .. } => return Ok(blob),
                other => return Err((i, unexpected(other))),
            }
        }
        Ok(blob)
    }

    /// Moves an input over [`INLINE_INPUT_MAX`] into a blob reference.
    pub(crate) async fn prepare(&self, mut spec: TaskSpec) -> Result<TaskSpec, ClientError> {
        if spec.input_blob.is_none() && spec.input.len() > INLINE_INPUT_MAX {
            spec.input_blob = Some(self.upload_input(&spec.input).await?);
            spec.input = Vec::new();
        }
        Ok(spec)
    }
}
