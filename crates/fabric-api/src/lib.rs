//! Fabric's REST API (DESIGN.md, "The user's contract"): `/api/v1` plus
//! `/health`, `/metrics` and the web dashboard, on a listener of its own,
//! started over a running dispatcher with [`start`]:
//!
//! ```no_run
//! # async fn demo(d: fabric_dispatcher::Dispatcher) -> std::io::Result<()> {
//! let addr = fabric_api::start(d.front(), &fabric_api::ApiConfig::default()).await?;
//! # Ok(()) }
//! ```
//!
//! Every handler calls the same admission and query code as the QUIC
//! service (`fabric_dispatcher::front`); this crate only translates
//! between HTTP and those calls. It depends on the dispatcher, never the
//! other way round.
//!
//! | room | holds |
//! | --- | --- |
//! | `auth` | bearer tokens, roles, per-token rate limits |
//! | `error` | `{"error": {"code", "message"}}` and body extractors |
//! | `types` | the JSON shapes, with their schemas |
//! | `tasks` | create, list, get, output, files, cancel, retry |
//! | `jobs` | create (a DAG of steps), list, get, cancel, retry (the rescue) |
//! | `schedules` | add, list, get, pause, resume, run now, remove |
//! | `uploads` | modules and blobs |
//! | `stream` | Server-Sent Events: one task's, and the cluster's |
//! | `listener` | the accept loop: a cap on connections, a deadline on request heads |
//! | `deadline` | the total deadline on a request's body |
//! | `slots` | caps per token: open event streams, requests in flight |
//! | `spool` | bodies streamed to the store's files as they arrive |
//! | `cluster` | workers, stats, health, metrics |
//! | `openapi` | the OpenAPI document, generated from the handlers |
//! | `dashboard` | the web dashboard at `/`, its assets embedded |

mod auth;
mod batch;
mod cluster;
mod dashboard;
mod deadline;
mod error;
mod jobs;
mod leader;
mod listener;
mod listing;
mod openapi;
mod schedules;
mod slots;
mod spool;
mod stream;
mod tasks;
mod types;
mod uploads;
mod whole;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use auth::RateLimit;
use error::{ApiError, Refused};
pub use listener::DEFAULT_MAX_CONNECTIONS;

use fabric_dispatcher::front::Shared;

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
    /// Connections open at once (more wait to be accepted); `None`:
    /// [`DEFAULT_MAX_CONNECTIONS`], or a quarter of the open-file limit
    /// when that is less.
    pub max_connections: Option<usize>,
    /// Time a connection has to send a whole request head, and the longest
    /// a kept-alive connection may sit idle (default 5 s).
    pub header_timeout: Duration,
    /// Requests one token may have in flight (more are refused with 429),
    /// so that no token takes every slot of the API (default 32).
    pub max_requests_per_token: u32,
    /// Time a request's body has to arrive whole, counted from its head
    /// (default 60 s); past it the answer is 408 and the connection closes.
    pub body_timeout: Duration,
}

/// Default [`ApiConfig::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`ApiConfig::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// Default REST listen address.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7080";

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_API_ADDR.parse().expect("a valid address"),
            rate_limit: RateLimit::default(),
            cors_origins: Vec::new(),
            max_connections: None,
            max_requests_per_token: slots::REQUESTS_PER_TOKEN,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// What every handler shares.
pub(crate) struct ApiState {
    pub shared: Arc<Shared>,
    limiter: auth::Limiter,
    streams: slots::TokenSlots,
    requests: slots::TokenSlots,
    module_checks: Arc<tokio::sync::Semaphore>,
    json_parses: Arc<tokio::sync::Semaphore>,
    /// The largest task body.
    json_cap: u64,
    body_timeout: Duration,
    started: Instant,
}

/// Binds the API's listener and serves it until the process ends; the
/// address it listens on.
pub async fn start(shared: Arc<Shared>, cfg: &ApiConfig) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let addr = listener.local_addr()?;
    let open_files = listener::raise_open_files();
    let connections = shared.metrics.api_connections();
    let (router, state) = router(shared, cfg);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            state.limiter.prune();
        }
    });
    let how = listener::Listening {
        max_connections: cfg
            .max_connections
            .unwrap_or_else(|| listener::default_max_connections(open_files)),
        header_timeout: cfg.header_timeout,
    };
    tokio::spawn(listener::serve(listener, router, how, connections));
    tracing::info!(
        %addr,
        max_connections = how.max_connections,
        header_timeout_s = how.header_timeout.as_secs_f64(),
        body_timeout_s = cfg.body_timeout.as_secs_f64(),
        "REST API listening"
    );
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the REST API takes bearer tokens over plain HTTP on a non-loopback address: put a TLS proxy in front of it, or keep it on 127.0.0.1");
    }
    Ok(addr)
}

/// The routes, with their body caps, CORS and refusal counting.
fn router(shared: Arc<Shared>, cfg: &ApiConfig) -> (Router, Arc<ApiState>) {
    let caps = &shared.cfg.caps;
    // A task body carries its input in base64 (4/3 of it) plus the rest.
    let json_cap = caps.max_input_bytes / 3 * 4 + (1 << 20);
    let state = Arc::new(ApiState {
        limiter: auth::Limiter::new(cfg.rate_limit),
        streams: slots::TokenSlots::streams(),
        requests: slots::TokenSlots::requests(cfg.max_requests_per_token),
        module_checks: Arc::new(tokio::sync::Semaphore::new(uploads::MODULE_CHECKS)),
        json_parses: Arc::new(tokio::sync::Semaphore::new(spool::JSON_PARSES)),
        json_cap: json_cap as u64,
        body_timeout: cfg.body_timeout,
        started: Instant::now(),
        shared,
    });
    let v1 = Router::new()
        // Uploads stream to the store and enforce their own caps.
        .route("/modules", post(uploads::module))
        .route("/blobs", post(uploads::blob))
        .route(
            "/tasks",
            post(tasks::create)
                .layer(DefaultBodyLimit::max(json_cap))
                .get(tasks::list),
        )
        .route(
            "/tasks/batch",
            post(batch::create).layer(DefaultBodyLimit::max(json_cap)),
        )
        .route("/tasks/{id}", get(tasks::get).delete(tasks::cancel))
        .route("/tasks/{id}/output", get(tasks::output))
        .route("/tasks/{id}/files", get(tasks::files))
        .route("/tasks/{id}/retry", post(tasks::retry))
        .route("/tasks/{id}/events", get(stream::task_events))
        .route("/jobs", post(jobs::create).get(jobs::list))
        .route("/jobs/{id}", get(jobs::get))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/jobs/{id}/retry", post(jobs::retry))
        .route("/schedules", post(schedules::create).get(schedules::list))
        .route(
            "/schedules/{name}",
            get(schedules::get).delete(schedules::remove),
        )
        .route("/schedules/{name}/pause", post(schedules::pause))
        .route("/schedules/{name}/resume", post(schedules::resume))
        .route("/schedules/{name}/run-now", post(schedules::run_now))
        .route("/events", get(stream::cluster_events))
        .route("/workers", get(cluster::workers))
        .route("/members", get(cluster::members))
        .route("/stats", get(cluster::stats))
        .route("/token", get(cluster::token))
        .route("/openapi.json", get(openapi::document))
        // Bodies must arrive whole within the body deadline, and at most
        // this many API requests are served at once (the rest wait their
        // turn; each token may hold only its share, see `slots`). /health,
        // /metrics and the dashboard are outside both: never queued
        // behind uploads.
        .layer(axum::middleware::map_request_with_state(
            state.clone(),
            deadline::apply,
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ))
        // Outermost: a follower sends the client to the leader before
        // reading a body or taking a slot.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            leader::leader_only,
        ));
    let router = Router::new()
        .nest("/api/v1", v1)
        .route("/", get(dashboard::index))
        .route("/assets/{name}", get(dashboard::asset))
        .route("/health", get(cluster::health))
        .route("/metrics", get(cluster::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            count_refusals,
        ))
        .layer(cors(&cfg.cors_origins))
        .with_state(state.clone());
    (router, state)
}

/// API requests served at once; more wait.
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
