//! Uploads: modules (checked as runnable wasm) and blobs (task inputs and
//! files), raw bodies named by their SHA-256.
//!
//! A body is streamed into the store's file for it as it arrives, hashed
//! on the way ([`fabric_store::BlobWriter`]): a request holds at most a few
//! [`BUFFER`]s of it in memory, never the whole body (issue 20, item 10).
//! A module is then read back whole to be checked, [`MODULE_CHECKS`] at a
//! time, so slow module uploads hold no more memory than slow blobs.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, BodyDataStream};
use axum::extract::State;
use axum::http::StatusCode;
use bytes::BytesMut;
use fabric_proto::wire::Response;
use fabric_store::BlobWriter;
use futures_util::StreamExt as _;
use http_body::Body as _;
use tokio::sync::mpsc;

use super::ApiState;
use super::auth::{Caller, Submit};
use super::error::{ApiError, ErrorResponse};
use super::types::Uploaded;
use crate::admission;
use crate::service::requests::blobs;

/// Bytes gathered from a body before they are handed to the writer.
const BUFFER: usize = 256 << 10;
/// Buffers on their way to the writer (one more is being filled, one
/// being written).
const BUFFERS_QUEUED: usize = 2;
/// Modules read back and checked at once (each up to the module cap).
pub(crate) const MODULE_CHECKS: usize = 2;

/// What is read and dropped of a refused body before the refusal.
const DRAIN_MAX: u64 = 64 << 20;

/// Reads and drops what is left of a refused body, up to [`DRAIN_MAX`]
/// (and within the body deadline): a client that sends its whole body
/// before reading the answer then gets the answer, not a reset.
async fn drain(mut stream: BodyDataStream) {
    let mut left = DRAIN_MAX;
    while let Some(Ok(piece)) = stream.next().await {
        left = left.saturating_sub(piece.len() as u64);
        if left == 0 {
            break;
        }
    }
}

/// Streams `body` into a new blob writer: at most `cap` bytes, else
/// `too_large(bytes)`.
async fn receive(
    st: &ApiState,
    body: Body,
    cap: u64,
    too_large: impl Fn(u64) -> ApiError,
) -> Result<BlobWriter, ApiError> {
    let declared = body.size_hint().lower();
    if declared > cap {
        drain(body.into_data_stream()).await;
        return Err(too_large(declared));
    }
    let writer = st.shared.store.blob_writer()?;
    let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(BUFFERS_QUEUED);
    let writing = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(piece) = rx.blocking_recv() {
            writer.write(&piece)?;
        }
        Ok::<_, fabric_store::StoreError>(writer)
    });
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut total = 0u64;
    let mut send_failed = false;
    loop {
        let piece = match stream.next().await {
            Some(Ok(piece)) => piece,
            // Dropping the sender ends the writer, which removes its file.
            Some(Err(e)) => return Err(ApiError::unreadable(&e)),
            None => break,
        };
        total += piece.len() as u64;
        if total > cap {
            drain(stream).await;
            return Err(too_large(total));
        }
        buf.extend_from_slice(&piece);
        if buf.len() >= BUFFER && tx.send(buf.split().freeze()).await.is_err() {
            send_failed = true;
            break;
        }
    }
    if !send_failed && !buf.is_empty() {
        // A failed send means the writer failed: its error is below.
        let _ = tx.send(buf.freeze()).await;
    }
    drop(tx);
    let writer = writing
        .await
        .map_err(|e| ApiError::internal(format!("the upload's writer failed: {e}")))??;
    Ok(writer)
}

/// Upload a wasm module (the raw bytes).
#[utoipa::path(post, path = "/api/v1/modules", tag = "uploads",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "A wasm32-wasip1 module exporting _start"),
    responses(
        (status = 201, description = "Stored", body = Uploaded),
        (status = 400, description = "Not a runnable module", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 413, description = "Over the module cap", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn module(
    _caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let cap = st.shared.cfg.caps.max_module_bytes;
    let writer = receive(&st, body, cap as u64, |len| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "module is over {len} bytes; the cluster allows at most {cap} ({} MiB)",
                cap >> 20
            ),
        )
    })
    .await?;
    let _checking = st
        .module_checks
        .acquire()
        .await
        .map_err(|_| ApiError::internal("module checks are closed"))?;
    let bytes = tokio::task::spawn_blocking(move || writer.into_bytes())
        .await
        .map_err(|e| ApiError::internal(format!("the upload's reader failed: {e}")))??;
    match blobs::put(&st.shared, &bytes).await? {
        Response::Blob { sha } => Ok((
            StatusCode::CREATED,
            Json(Uploaded {
                sha256: sha.to_hex(),
                len: bytes.len() as u64,
            }),
        )),
        _ => Err(ApiError::internal("unexpected answer to an upload")),
    }
}

/// Upload a blob: a task's input or a file for a native task.
#[utoipa::path(post, path = "/api/v1/blobs", tag = "uploads",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "Stored", body = Uploaded),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 413, description = "Over the input cap", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn blob(
    _caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let caps = &st.shared.cfg.caps;
    let writer = receive(&st, body, caps.max_input_bytes as u64, |len| {
        admission::check_input_len(len, caps).err().map_or_else(
            || ApiError::internal("a blob under the cap was refused"),
            ApiError::from,
        )
    })
    .await?;
    let stored = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| ApiError::internal(format!("the upload's writer failed: {e}")))??;
    st.shared.commit.durable().await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            sha256: stored.sha.to_hex(),
            len: stored.len,
        }),
    ))
}
