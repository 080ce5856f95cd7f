//! REST errors: `{"error": {"code", "message"}}` with a fitting status,
//! and the extractors that turn bad bodies into such errors instead of
//! axum's plain-text rejections.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fabric_proto::wire::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use fabric_dispatcher::front::RequestError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `timeout`, `conflict`,
    /// `too_large`, `unsupported_media_type`, `rate_limited`, `queue_full`,
    /// `not_leader`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
}

/// Why a REST request failed.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_s: Option<u64>,
}

/// Put on an error response so the metrics layer can count refusals.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refused(pub &'static str);

impl ApiError {
    /// This error, its message after `prefix` (where in a body it is).
    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }

    /// This error, with a `Retry-After` of `s` seconds.
    pub(crate) fn retry_after(mut self, s: u64) -> Self {
        self.retry_after_s = Some(s.max(1));
        self
    }

    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub(crate) fn rate_limited(retry_after_s: u64) -> Self {
        Self {
            retry_after_s: Some(retry_after_s.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests for this token; retry after the Retry-After seconds",
            )
        }
    }

    pub(crate) fn too_many(message: String) -> Self {
        Self {
            retry_after_s: Some(1),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// 408: the body missed its deadline (the connection is closed after
    /// the answer).
    pub(crate) fn body_deadline(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive within {} s; send it faster, or in smaller pieces",
                limit.as_secs()
            ),
        )
    }

    /// 415: a JSON endpoint got another content type.
    pub(crate) fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body with Content-Type: application/json",
        )
    }

    /// A body that could not be read: 408 past its deadline, else 400.
    pub(crate) fn unreadable(e: &(dyn std::error::Error + 'static)) -> Self {
        match super::deadline::missed(e) {
            Some(limit) => Self::body_deadline(limit),
            None => Self::bad(format!("cannot read the body: {e}")),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        let (status, code) = match body.code {
            ErrorCode::Unauthorized => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorCode::BadRequest | ErrorCode::Malformed | ErrorCode::Unsupported => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            ErrorCode::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorCode::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ErrorCode::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorCode::QueueFull => (StatusCode::SERVICE_UNAVAILABLE, "queue_full"),
            ErrorCode::NotLeader => (StatusCode::SERVICE_UNAVAILABLE, "not_leader"),
            ErrorCode::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let mut e = Self::new(status, code, body.message);
        if body.code == ErrorCode::QueueFull {
            e.retry_after_s = Some(1);
        }
        e
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        e.into_body().into()
    }
}

impl From<fabric_store::StoreError> for ApiError {
    fn from(e: fabric_store::StoreError) -> Self {
        RequestError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorResponse {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"fabric\""),
            );
        }
        if let Some(s) = self.retry_after_s
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.status.is_client_error() || self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.extensions_mut().insert(Refused(self.code));
        }
        resp
    }
}

/// A JSON body whose rejections are [`ApiError`]s: 400 for malformed JSON
/// and unknown or wrongly typed fields, 413 over the body cap, 415 without
/// a JSON content type.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(e) => Err(json_rejection(&e)),
        }
    }
}

fn json_rejection(e: &JsonRejection) -> ApiError {
    match e {
        JsonRejection::JsonDataError(d) => {
            ApiError::bad(format!("the JSON body does not fit: {}", d.body_text()))
        }
        JsonRejection::JsonSyntaxError(d) => {
            ApiError::bad(format!("the body is not valid JSON: {}", d.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::not_json(),
        JsonRejection::BytesRejection(b) => bytes_rejection(b),
        other => ApiError::bad(other.body_text()),
    }
}

/// The body cap hit, or the body could not be read.
pub(crate) fn bytes_rejection(e: &BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body is over this endpoint's size cap",
        )
    } else {
        ApiError::unreadable(e)
    }
}

/// Query parameters whose rejections are [`ApiError`]s (400).
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::bad(format!("bad query: {}", e.body_text()))),
        }
    }
}

/// A task id from the path: 400 when it is not one.
pub(crate) fn task_id(text: &str) -> Result<fabric_proto::TaskId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("{text:?} is not a task id")))
}

/// The `{id}` of a task route: 400 (as JSON) when it is not a task id.
#[derive(Debug)]
pub(crate) struct TaskPath(pub fabric_proto::TaskId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TaskPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        task_id(&path_text(parts, state, "task id").await?).map(Self)
    }
}

/// The one `{...}` of a route's path as text: 400 (as JSON) when it cannot
/// be read; `what` names it in the error. The typed path extractors
/// (tasks, jobs, schedules) parse it further.
pub(crate) async fn path_text<S: Send + Sync>(
    parts: &mut axum::http::request::Parts,
    state: &S,
    what: &str,
) -> Result<String, ApiError> {
    use axum::extract::FromRequestParts as _;
    match axum::extract::Path::<String>::from_request_parts(parts, state).await {
        Ok(axum::extract::Path(text)) => Ok(text),
        Err(e) => Err(ApiError::bad(format!("bad {what}: {}", e.body_text()))),
    }
}
