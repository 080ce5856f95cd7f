//! Uploads: modules (checked as runnable wasm) and blobs (task inputs and
//! files), raw bodies named by their SHA-256.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fabric_proto::wire::Response;

use super::ApiState;
use super::auth::{Caller, Submit};
use super::error::{ApiError, ErrorResponse, RawBody};
use super::types::Uploaded;
use crate::admission;
use crate::service::requests::blobs;

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
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
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
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    admission::check_input_len(bytes.len() as u64, &st.shared.cfg.caps)?;
    let store = st.shared.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.put_chunked(&bytes))
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
