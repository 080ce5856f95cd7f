//! Blob requests: module uploads, presence checks and fetches by digest.

use fabric_proto::Sha256;
use fabric_proto::wire::Response;

use super::{Answer, RequestError};
use crate::admission;
use crate::service::state::Shared;

/// Stores an uploaded module (checked first) and answers its digest once
/// durable.
pub(crate) async fn put(shared: &Shared, bytes: &[u8]) -> Answer {
    admission::check_module(bytes, &shared.cfg.caps).map_err(RequestError::Refused)?;
    let sha = shared.store.put_blob(bytes)?;
    shared.commit.durable().await?;
    Ok(Response::Blob { sha })
}

/// Whether a blob is stored.
pub(crate) fn has(shared: &Shared, sha: &Sha256) -> Answer {
    Ok(Response::HasBlob(shared.store.has_blob(sha)?))
}

/// A blob's bytes (workers fetch modules this way).
pub(crate) fn get(shared: &Shared, sha: &Sha256) -> Answer {
    match shared.store.blob(sha)? {
        Some(bytes) => Ok(Response::BlobBytes { bytes }),
        None => Err(RequestError::NotFound(format!("no blob {sha}"))),
    }
}
