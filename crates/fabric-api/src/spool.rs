//! Bodies spooled to the store as they arrive: uploads (modules, blobs)
//! and big task bodies go to a file of their own through a
//! [`fabric_store::BlobWriter`], a few buffers at a time, so that a request
//! never holds its whole body in memory while it trickles in (issue 20,
//! item 10).
//!
//! A task's JSON over [`SMALL_JSON`] (its input in base64 can make it
//! 86 MiB) is parsed from its file once whole, [`JSON_PARSES`] at a time,
//! and the parse's slot is held until the request is answered: the
//! memory big task bodies take is bounded by that count, not by how many
//! arrive at once. Smaller ones are read in memory as before.

use std::io::BufReader;
use std::sync::Arc;

use axum::body::{Body, BodyDataStream};
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use bytes::BytesMut;
use fabric_store::BlobWriter;
use futures_util::StreamExt as _;
use http_body::Body as _;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use super::ApiState;
use super::error::{ApiError, JsonBody};

/// Bytes gathered from a body before they are handed to the writer.
const BUFFER: usize = 256 << 10;
/// Buffers on their way to the writer (one more is being filled, one
/// being written).
const BUFFERS_QUEUED: usize = 2;
/// What is read and dropped of a refused body before the refusal.
const DRAIN_MAX: u64 = 128 << 20;

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
pub(crate) async fn receive(
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

/// Task bodies up to this size are read in memory; larger ones (or ones of
/// unknown length) are spooled.
pub(crate) const SMALL_JSON: u64 = 256 << 10;
/// Spooled task bodies parsed (and then served) at once.
pub(crate) const JSON_PARSES: usize = 2;

/// A JSON body read like [`JsonBody`] (the same refusals), spooled to a
/// file when it is big; holds its parse slot until dropped.
#[derive(Debug)]
pub(crate) struct SpooledJson<T> {
    /// The parsed body.
    pub value: T,
    _parse: Option<OwnedSemaphorePermit>,
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

impl<T: DeserializeOwned + Send + 'static> FromRequest<Arc<ApiState>> for SpooledJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &Arc<ApiState>) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if !is_json(&req) {
            // Read (and drop) the body first, as for a 413, so that the
            // client sees the answer.
            drain(req.into_body().into_data_stream()).await;
            return Err(ApiError::not_json());
        }
        if declared.is_some_and(|n| n <= SMALL_JSON) {
            let JsonBody(value) = JsonBody::<T>::from_request(req, st).await?;
            return Ok(Self {
                value,
                _parse: None,
            });
        }
        let cap = st.json_cap;
        let writer = receive(st, req.into_body(), cap, |len| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the task body is over {len} bytes; this endpoint takes at most {cap}"),
            )
        })
        .await?;
        let permit = st
            .json_parses
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("task parses are closed"))?;
        // The permit goes with the parse and comes back with its value: a
        // client that hangs up mid-parse does not free it while the parse
        // still runs (hang-ups could otherwise run any number at once).
        let (parsed, permit) = tokio::task::spawn_blocking(move || {
            let parsed = writer
                .into_reader()
                .map(|file| serde_json::from_reader::<_, T>(BufReader::new(file)));
            (parsed, permit)
        })
        .await
        .map_err(|e| ApiError::internal(format!("the body's reader failed: {e}")))?;
        let value = parsed?.map_err(|e| {
            if e.is_data() {
                ApiError::bad(format!("the JSON body does not fit: {e}"))
            } else {
                ApiError::bad(format!("the body is not valid JSON: {e}"))
            }
        })?;
        Ok(Self {
            value,
            _parse: Some(permit),
        })
    }
}
