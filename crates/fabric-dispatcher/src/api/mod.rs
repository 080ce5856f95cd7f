//! The REST API (DESIGN.md, "The user's contract"): `/api/v1` plus
//! `/health` and `/metrics`, on its own listener. Every handler calls the
//! same admission and query code as the QUIC service; this room only
//! translates between HTTP and those calls.
//!
//! | room | holds |
//! | --- | --- |
//! | `auth` | bearer tokens, roles, per-token rate limits |
//! | `error` | `{"error": {"code", "message"}}` and body extractors |
//! | `types` | the JSON shapes, with their schemas |
//! | `tasks` | create, list, get, output, files, cancel, retry |
//! | `uploads` | modules and blobs |
//! | `stream` | Server-Sent Events: one task's, and the cluster's |
//! | `slots` | caps on open event streams, per token and in all |
//! | `cluster` | workers, stats, health, metrics |
//! | `openapi` | the OpenAPI document, generated from the handlers |
//! | `dashboard` | the web dashboard at `/`, its assets embedded |

mod auth;
mod cluster;
mod dashboard;
mod error;
mod openapi;
mod slots;
mod stream;
mod tasks;
mod types;
mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::RateLimit;
use error::{ApiError, Refused};

use crate::service::state::Shared;

/// Where and how the REST API is served.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Listen address (default 127.0.0.1:7080).
    pub listen: SocketAddr,
    /// Requests each token may make.
    pub rate_limit: RateLimit,
    /// Origins a browser may call the API from (CORS); empty: only the
    /// dispatcher's own pages.
    pub cors_origins: Vec<String>,
}

/// Default REST listen address.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7080";

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_API_ADDR.parse().expect("a valid address"),
            rate_limit: RateLimit::default(),
            cors_origins: Vec::new(),
        }
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    pub shared: Arc<Shared>,
    limiter: auth::Limiter,
    streams: slots::StreamSlots,
    started: Instant,
}

/// Binds the API's listener and serves it until the process ends.
pub(crate) async fn start(shared: Arc<Shared>, cfg: &ApiConfig) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let (router, state) = router(shared, cfg);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            tick.tick().await;
            state.limiter.prune();
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the REST API stopped");
        }
    });
    tracing::info!(%addr, "REST API listening");
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the REST API takes bearer tokens over plain HTTP on a non-loopback address: put a TLS proxy in front of it, or keep it on 127.0.0.1");
    }
    Ok(addr)
}

/// The routes, with their body caps, CORS and refusal counting.
fn router(shared: Arc<Shared>, cfg: &ApiConfig) -> (Router, Arc<ApiState>) {
    let caps = &shared.cfg.caps;
    let module_cap = caps.max_module_bytes;
    let blob_cap = caps.max_input_bytes;
    // A task body carries its input in base64 (4/3 of it) plus the rest.
    let json_cap = caps.max_input_bytes / 3 * 4 + (1 << 20);
    let state = Arc::new(ApiState {
        limiter: auth::Limiter::new(cfg.rate_limit),
        streams: slots::StreamSlots::default(),
        started: Instant::now(),
        shared,
    });
    let v1 = Router::new()
        .route(
            "/modules",
            post(uploads::module).layer(DefaultBodyLimit::max(module_cap)),
        )
        .route(
            "/blobs",
            post(uploads::blob).layer(DefaultBodyLimit::max(blob_cap)),
        )
        .route(
            "/tasks",
            post(tasks::create)
                .layer(DefaultBodyLimit::max(json_cap))
                .get(tasks::list),
        )
        .route("/tasks/{id}", get(tasks::get).delete(tasks::cancel))
        .route("/tasks/{id}/output", get(tasks::output))
        .route("/tasks/{id}/files", get(tasks::files))
        .route("/tasks/{id}/retry", post(tasks::retry))
        .route("/tasks/{id}/events", get(stream::task_events))
        .route("/events", get(stream::cluster_events))
        .route("/workers", get(cluster::workers))
        .route("/stats", get(cluster::stats))
        .route("/token", get(cluster::token))
        .route("/openapi.json", get(openapi::document));
    let router = Router::new()
        .nest("/api/v1", v1)
        .route("/", get(dashboard::index))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/health", get(cluster::health))
        .route("/metrics", get(cluster::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies must arrive within a minute, and at most this many
        // requests are served at once (the rest wait their turn).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(60),
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            count_refusals,
        ))
        .layer(cors(&cfg.cors_origins))
        .with_state(state.clone());
    (router, state)
}

/// Requests served at once; more wait.
const MAX_IN_FLIGHT: usize = 256;

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint (see /api/v1/openapi.json)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method (see /api/v1/openapi.json)",
    )
}

/// Counts every refused request by its error code.
async fn count_refusals(State(state): State<Arc<ApiState>>, resp: Response) -> Response {
    if let Some(Refused(code)) = resp.extensions().get::<Refused>() {
        state.shared.metrics.refused(code);
    }
    resp
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::RETRY_AFTER])
}
