//! Blob requests: module uploads, chunked input uploads, presence checks
//! and fetches by digest (whole, or by range).

use fabric_proto::wire::{ErrorBody, ErrorCode, Response};
use fabric_proto::{BLOB_CHUNK, Sha256};
use fabric_store::ChunkError;

use super::{Answer, RequestError};
use crate::admission;
use crate::service::state::Shared;

/// Stores an uploaded module (checked first) and answers its digest once
/// durable.
pub async fn put(shared: &Shared, bytes: &[u8]) -> Answer {
    admission::check_module(bytes, &shared.cfg.caps).map_err(RequestError::Refused)?;
    let sha = shared.ledger.put_blob(bytes)?;
    shared.ledger.durable().await?;
    Ok(Response::Blob { sha })
}

/// Stores one piece of a chunked upload (a task input); the last piece is
/// answered once the whole blob is checked and durable.
pub async fn put_chunk(
    shared: &Shared,
    sha: &Sha256,
    offset: u64,
    bytes: &[u8],
    last: bool,
) -> Answer {
    let end = offset.saturating_add(bytes.len() as u64);
    admission::check_input_len(end, &shared.cfg.caps).map_err(RequestError::Refused)?;
    let progress = shared
        .store
        .put_blob_chunk(sha, offset, bytes, last)
        .map_err(|e| match e {
            ChunkError::Store(e) => RequestError::Store(e),
            other => {
                RequestError::Refused(ErrorBody::new(ErrorCode::BadRequest, other.to_string()))
            }
        })?;
    if progress.complete {
        replicate(
            shared,
            &fabric_proto::BlobRef {
                sha: *sha,
                len: progress.received,
            },
        )
        .await?;
        shared.ledger.durable().await?;
    }
    Ok(Response::BlobChunkStored {
        received: progress.received,
        complete: progress.complete,
    })
}

/// Makes a chunked blob whole in this dispatcher's store durable on a
/// majority of its group (a single dispatcher has nothing to do): the
/// upload is answered after it.
pub async fn replicate(shared: &Shared, blob: &fabric_proto::BlobRef) -> Result<(), RequestError> {
    Ok(shared.ledger.replicate_chunked(blob).await?)
}

/// Whether a blob is stored (in a group: and went whole through the log,
/// so a majority holds it; one whole here only is uploaded again, which
/// copies it to the others).
pub fn has(shared: &Shared, sha: &Sha256) -> Answer {
    Ok(Response::HasBlob(held(shared, sha, None)?))
}

/// Whether the blob `sha` (of `len` bytes, when given) is stored as a task
/// may name it: here, and in a group carried whole by the log.
pub(crate) fn held(
    shared: &Shared,
    sha: &Sha256,
    len: Option<u64>,
) -> Result<bool, fabric_store::StoreError> {
    let here = match (shared.store.blob_len(sha)?, len) {
        (Some(n), Some(len)) => n == len,
        (Some(_), None) => true,
        (None, _) => false,
    };
    Ok(here
        && (!shared.ledger.is_raft()
            || shared.store.has_module(sha)?
            || shared.store.blob_replicated(sha)?))
}

/// A blob's bytes (workers fetch modules this way). A module whose bytes
/// were first uploaded in pieces (as an input) is read back whole too, up
/// to the module cap; anything larger is fetched by range.
pub fn get(shared: &Shared, sha: &Sha256) -> Answer {
    if let Some(bytes) = shared.store.blob(sha)? {
        return Ok(Response::BlobBytes { bytes });
    }
    match shared.store.blob_len(sha)? {
        Some(len) if len <= shared.cfg.caps.max_module_bytes as u64 => {
            match shared.store.blob_range(sha, 0, len)? {
                Some((bytes, _)) => Ok(Response::BlobBytes { bytes }),
                None => Err(RequestError::NotFound(format!("no blob {sha}"))),
            }
        }
        Some(len) => Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("blob {sha} is {len} bytes; fetch it in pieces"),
        ))),
        None => Err(RequestError::NotFound(format!("no blob {sha}"))),
    }
}

/// Part of a blob, at most one piece long (workers fetch large inputs this
/// way).
pub fn get_range(shared: &Shared, sha: &Sha256, offset: u64, len: u64) -> Answer {
    let len = len.min(BLOB_CHUNK as u64);
    match shared.store.blob_range(sha, offset, len)? {
        Some((bytes, total)) => Ok(Response::BlobRange { total, bytes }),
        None => Err(RequestError::NotFound(format!("no blob {sha}"))),
    }
}
