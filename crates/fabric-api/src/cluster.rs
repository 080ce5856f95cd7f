//! The cluster as a whole: workers, stats, health and metrics.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use fabric_proto::Priority;
use fabric_proto::wire::{Response, WorkerState, WorkerSummary};

use super::ApiState;
use super::auth::{Caller, Monitor, Read};
use super::error::{ApiError, ErrorResponse};
use super::types::{GroupHealth, Health, KeyHealth, MemberJson, Stats, TokenView, WorkerView};
use fabric_dispatcher::front::Shared;
use fabric_dispatcher::front::Snapshot;
use fabric_dispatcher::front::query;

/// Every worker listed, gone ones included (`/workers`).
fn summaries(shared: &Shared) -> Vec<WorkerSummary> {
    match query::workers(shared) {
        Response::Workers(w) => w,
        _ => Vec::new(),
    }
}

fn free_slots(workers: &[WorkerSummary]) -> u64 {
    workers
        .iter()
        .filter(|w| w.state == WorkerState::Ready)
        .map(|w| u64::from(w.info.slots.saturating_sub(w.running)))
        .sum()
}

fn state_name(s: WorkerState) -> &'static str {
    s.as_str()
}

/// Registered workers.
#[utoipa::path(get, path = "/api/v1/workers", tag = "cluster",
    responses(
        (status = 200, description = "Workers by name", body = [WorkerView]),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn workers(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
) -> Result<Json<Vec<WorkerView>>, ApiError> {
    Ok(Json(
        summaries(&st.shared)
            .into_iter()
            .map(|w| WorkerView {
                key: w.key.to_string(),
                name: w.info.name,
                addr: w.addr,
                state: state_name(w.state).to_owned(),
                slots: w.info.slots,
                running: w.running,
                memory_bytes: w.info.memory_bytes,
                labels: w.info.labels,
                wasm: w.info.wasm,
                commands: w.info.commands,
                last_seen_ms: w.last_seen_ms,
                since_ms: w.since_ms,
                why: w.why,
            })
            .collect(),
    ))
}

/// The group of dispatchers: each one's role and log position, as this
/// one sees it (empty when the dispatcher runs alone).
#[utoipa::path(get, path = "/api/v1/members", tag = "cluster",
    responses(
        (status = 200, description = "The dispatchers of the group", body = [MemberJson]),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn members(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
) -> Json<Vec<MemberJson>> {
    Json(
        query::members(&st.shared)
            .into_iter()
            .map(|m| MemberJson {
                key: m.key,
                addr: m.addr,
                voter: m.voter,
                role: m.role,
                this: m.this,
                log_index: m.log_index,
                applied: m.applied,
                term: m.term,
            })
            .collect(),
    )
}

/// The cluster's figures.
#[utoipa::path(get, path = "/api/v1/stats", tag = "cluster",
    responses(
        (status = 200, description = "Counts", body = Stats),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn stats(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
) -> Result<Json<Stats>, ApiError> {
    let Response::Counts(c) = query::counts(&st.shared)? else {
        return Err(ApiError::internal("unexpected answer to a count"));
    };
    // The figures count the workers the cluster has, not those gone.
    let workers = query::registered(&st.shared);
    Ok(Json(Stats {
        total: c.total,
        queued: c.queued,
        running: c.running,
        finished: c
            .finished
            .iter()
            .map(|(s, n)| (s.as_str().to_owned(), *n))
            .collect(),
        dead_letters: c.dead_letters,
        workers: workers.len() as u64,
        free_slots: free_slots(&workers),
    }))
}

/// The token this request carries: its id and role (pages use it to offer
/// only what the token may do).
#[utoipa::path(get, path = "/api/v1/token", tag = "cluster",
    responses(
        (status = 200, description = "The caller's token", body = TokenView),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn token(caller: Caller<Read>) -> Json<TokenView> {
    Json(TokenView {
        id: caller.id,
        role: caller.role.as_str().to_owned(),
    })
}

/// Whether the dispatcher is up, its version and uptime, and whether its
/// store answers (no token needed).
#[utoipa::path(get, path = "/health", tag = "cluster",
    responses((status = 200, description = "Up", body = Health)))]
pub(crate) async fn health(State(st): State<Arc<ApiState>>) -> Json<Health> {
    let (store, stored_tasks) = match st.shared.store.totals() {
        Ok(t) => ("ok".to_owned(), t.tasks),
        Err(e) => (format!("failing: {e}"), 0),
    };
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: st.started.elapsed().as_secs(),
        store,
        stored_tasks,
        keys: {
            let k = st.shared.store.keyring().state();
            KeyHealth {
                wrap: k.wrap.as_str().to_owned(),
                active_key: k.active,
                keys: k.keys.len(),
                rewrapping: st.shared.rewrapping(),
            }
        },
        group: st.shared.group_status().map(|g| GroupHealth {
            role: g.role.to_owned(),
            term: g.term,
            log_index: g.last_log,
            applied: g.applied,
            members: g.members.len(),
            leader_api_url: st.shared.leader_api_url(),
        }),
    })
}

/// Prometheus metrics (OpenMetrics text; a read token).
#[utoipa::path(get, path = "/metrics", tag = "cluster",
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn metrics(
    _caller: Caller<Monitor>,
    State(st): State<Arc<ApiState>>,
) -> Result<impl IntoResponse, ApiError> {
    let shared = &st.shared;
    let (queued, running) = shared.live_counts();
    let workers = query::registered(shared);
    let snapshot = Snapshot {
        queued: vec![
            (Priority::High, queued[0]),
            (Priority::Normal, queued[1]),
            (Priority::Low, queued[2]),
        ],
        running,
        workers: workers.len() as u64,
        free_slots: free_slots(&workers),
        stored: shared.store.totals()?.finished,
        api_in_flight: u64::from(st.requests.total()),
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.render(&snapshot),
    ))
}
