//! Large task inputs, fetched from the dispatcher by digest one
//! [`BLOB_CHUNK`] at a time (one `GetBlobRange` stream per piece), then
//! checked against the manifest's `input_digest` before the task runs.

use fabric_net::framed;
use fabric_proto::wire::{Request, Response};
use fabric_proto::{BLOB_CHUNK, BlobRef, Manifest};
use quinn::Connection;

use crate::verify::Refusal;

/// Most bytes reserved up front for an input, whatever length the
/// assignment names (the buffer grows as pieces really arrive).
const MAX_RESERVE: u64 = 64 << 20;

/// The manifest's input, fetched piece by piece and checked.
pub(crate) async fn fetch(
    conn: &Connection,
    max_frame: usize,
    manifest: &Manifest,
    blob: BlobRef,
) -> Result<Vec<u8>, Refusal> {
    let fail = |reason: String| Refusal::InputFetch {
        sha: blob.sha,
        reason,
    };
    if blob.sha != manifest.input_digest {
        return Err(fail(format!(
            "the assignment names input {}, the manifest {}",
            blob.sha, manifest.input_digest
        )));
    }
    let input = fetch_blob(conn, max_frame, blob).await.map_err(fail)?;
    manifest.check_input(&input)?;
    Ok(input)
}

/// A chunked blob's bytes, fetched piece by piece and checked against its
/// digest.
pub(crate) async fn fetch_blob(
    conn: &Connection,
    max_frame: usize,
    blob: BlobRef,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::with_capacity(blob.len.min(MAX_RESERVE) as usize);
    for (offset, len) in blob.chunks() {
        let piece = range(conn, max_frame, blob, offset, len).await?;
        if piece.len() as u64 != len {
            return Err(format!(
                "the dispatcher sent {} bytes at offset {offset}, not {len}",
                piece.len()
            ));
        }
        bytes.extend_from_slice(&piece);
    }
    if fabric_proto::Sha256::of(&bytes) != blob.sha {
        return Err("the bytes do not hash to the blob's digest".into());
    }
    Ok(bytes)
}

/// One piece of the blob.
async fn range(
    conn: &Connection,
    max_frame: usize,
    blob: BlobRef,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, String> {
    debug_assert!(len <= BLOB_CHUNK as u64);
    let (mut send, mut recv) = framed::open(conn, max_frame)
        .await
        .map_err(|e| e.to_string())?;
    send.send(&Request::GetBlobRange {
        sha: blob.sha,
        offset,
        len,
    })
    .await
    .map_err(|e| e.to_string())?;
    let _ = send.finish();
    match recv.expect().await.map_err(|e| e.to_string())? {
        Response::BlobRange { bytes, .. } => Ok(bytes),
        Response::Error(e) => Err(e.message),
        other => Err(format!("unexpected answer {other:?}")),
    }
}
