//! Uploads: modules (checked as runnable wasm) and blobs (task inputs and
//! files), raw bodies named by their SHA-256.
//!
//! A body is streamed into the store's file for it as it arrives, hashed
//! on the way (`spool.rs`): a request holds a few buffers of it in memory,
//! never the whole body (issue 20, item 10). A module is then read back
//! whole to be checked, [`MODULE_CHECKS`] at a time, so slow module
//! uploads hold no more memory than slow blobs.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use fabric_proto::wire::Response;

use super::ApiState;
use super::auth::{Caller, Submit};
use super::error::{ApiError, ErrorResponse};
use super::spool::receive;
use super::types::Uploaded;
use fabric_dispatcher::front::admission;
use fabric_dispatcher::front::blobs;

/// Modules read back and checked at once (each up to the module cap).
pub(crate) const MODULE_CHECKS: usize = 2;

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
    caller: Caller<Submit>,
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
    let checking = st
        .module_checks
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("module checks are closed"))?;
    // The permit and the caller's slot go with the read and come back with
    // its bytes: a client that hangs up does not free them while the read
    // still runs (hang-ups could otherwise hold any number of modules in
    // memory at once).
    let (bytes, _checking, _caller) =
        tokio::task::spawn_blocking(move || (writer.into_bytes(), checking, caller))
            .await
            .map_err(|e| ApiError::internal(format!("the upload's reader failed: {e}")))?;
    let bytes = bytes?;
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
    caller: Caller<Submit>,
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
    // The caller's slot is held until the file is sealed, whoever hangs up.
    let (stored, _caller) = tokio::task::spawn_blocking(move || (writer.finish(), caller))
        .await
        .map_err(|e| ApiError::internal(format!("the upload's writer failed: {e}")))?;
    let stored = stored?;
    blobs::replicate(&st.shared, &stored).await?;
    st.shared.durable().await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            sha256: stored.sha.to_hex(),
            len: stored.len,
        }),
    ))
}
