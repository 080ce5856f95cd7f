//! In a group of dispatchers only the leader serves the API: a follower
//! answers every `/api/v1` request with **307 Temporary Redirect** to the
//! same path on the leader's REST URL (a 307 keeps the method and body, so
//! a POST is sent again as it was). It does not proxy: a proxied upload
//! would be spooled twice. When the leader is not known yet, or serves no
//! REST API, the answer is 503 `not_leader` with a `Retry-After`. `/health`,
//! `/metrics` and the dashboard are served by every member.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiState;
use crate::error::ApiError;

/// The layer's function: serve, or send the client to the leader.
pub(crate) async fn leader_only(
    State(st): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Response {
    if st.shared.leading() {
        return next.run(req).await;
    }
    let Some(url) = st.shared.leader_api_url() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_leader",
            "this dispatcher does not lead its group and knows no leader's REST API; try again shortly",
        )
        .retry_after(1)
        .into_response();
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    // The layer sits on the nested `/api/v1` router, which sees the path
    // without its prefix.
    let location = format!("{}/api/v1{path}", url.trim_end_matches('/'));
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_leader",
            format!("the leader's REST URL {url:?} is not valid"),
        )
        .into_response(),
    }
}
