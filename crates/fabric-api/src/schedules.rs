//! Schedules: add (admin), list, get, pause, resume, run now, remove
//! (admin) — the same requests as `fabric schedule`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fabric_dispatcher::front::schedules;
use fabric_proto::wire::Response;
use fabric_proto::{ScheduleAction, ScheduleSpec};

use super::ApiState;
use super::auth::{Admin, Caller, Read, Submit};
use super::error::{ApiError, ErrorResponse};
use super::types::{NewSchedule, ScheduleJson};
use super::whole::to_the_end;

/// The `{name}` of a schedule route: 400 (as JSON) when it is not a name.
#[derive(Debug)]
pub(crate) struct NamePath(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NamePath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let name = super::error::path_text(parts, state, "schedule name").await?;
        fabric_proto::check_schedule_name(&name).map_err(ApiError::bad)?;
        Ok(Self(name))
    }
}

fn one(resp: Response) -> Result<ScheduleJson, ApiError> {
    match resp {
        Response::Schedule(rec) => Ok(ScheduleJson::from(&*rec)),
        _ => Err(ApiError::internal("unexpected answer about a schedule")),
    }
}

/// Add a schedule (admin).
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules",
    request_body = NewSchedule,
    responses(
        (status = 201, description = "Added; stored and flushed", body = ScheduleJson),
        (status = 400, description = "Bad input: a bad cron field (named), zone or task", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs admin)", body = ErrorResponse),
        (status = 404, description = "Module not uploaded", body = ErrorResponse),
        (status = 409, description = "A schedule of that name exists", body = ErrorResponse),
        (status = 413, description = "Body over the cap", body = ErrorResponse),
        (status = 415, description = "Not JSON", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "Too many schedules", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    caller: Caller<Admin>,
    State(st): State<Arc<ApiState>>,
    body: super::spool::SpooledJson<NewSchedule>,
) -> Result<(StatusCode, Json<ScheduleJson>), ApiError> {
    let s = body.value;
    let spec = ScheduleSpec {
        overlap: s
            .overlap
            .as_deref()
            .unwrap_or("skip")
            .parse()
            .map_err(|e: String| ApiError::bad(e.replace("--overlap", "overlap")))?,
        catch_up: s
            .catch_up
            .as_deref()
            .unwrap_or("one")
            .parse()
            .map_err(|e: String| ApiError::bad(e.replace("--catch-up", "catch_up")))?,
        name: s.name,
        cron: s.cron,
        tz: s.tz.unwrap_or_else(|| "UTC".to_owned()),
        task: Some(super::tasks::spec_of(s.task).map_err(|e| e.prefixed("task: "))?),
        job: None,
    };
    let shared = st.shared.clone();
    let added =
        one(to_the_end(caller, async move { schedules::add(&shared, spec).await }).await??)?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Every schedule, each with its last run.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules",
    responses(
        (status = 200, description = "The schedules", body = [ScheduleJson]),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
) -> Result<Json<Vec<ScheduleJson>>, ApiError> {
    match schedules::list(&st.shared)? {
        Response::Schedules(all) => Ok(Json(all.iter().map(ScheduleJson::from).collect())),
        _ => Err(ApiError::internal("unexpected answer to a schedule list")),
    }
}

/// A schedule with its latest runs.
#[utoipa::path(get, path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleJson),
        (status = 400, description = "Not a schedule name", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 404, description = "No such schedule", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    NamePath(name): NamePath,
) -> Result<Json<ScheduleJson>, ApiError> {
    Ok(Json(one(schedules::get(&st.shared, &name)?)?))
}

async fn act(
    caller: impl Send + 'static,
    st: &ApiState,
    name: &str,
    action: ScheduleAction,
) -> Result<Json<ScheduleJson>, ApiError> {
    // Run now submits a task: it must not stop between its write and its
    // queueing when the client hangs up (see `whole.rs`).
    let (shared, name) = (st.shared.clone(), name.to_owned());
    let set = to_the_end(caller, async move {
        schedules::set(&shared, &name, action).await
    });
    Ok(Json(one(set.await??)?))
}

macro_rules! action {
    ($fn:ident, $path:literal, $action:expr, $role:ty, $what:literal, $needs:literal) => {
        #[doc = $what]
        #[utoipa::path(post, path = $path, tag = "schedules",
                    params(("name" = String, Path, description = "Schedule name")),
                    responses(
                        (status = 200, description = "The schedule after", body = ScheduleJson),
                        (status = 400, description = "Not a schedule name", body = ErrorResponse),
                        (status = 401, description = "No or unknown token", body = ErrorResponse),
                        (status = 403, description = $needs, body = ErrorResponse),
                        (status = 404, description = "No such schedule", body = ErrorResponse),
                        (status = 429, description = "Rate limited", body = ErrorResponse),
                    ),
                    security(("bearer" = [])))]
        pub(crate) async fn $fn(
            caller: Caller<$role>,
            State(st): State<Arc<ApiState>>,
            NamePath(name): NamePath,
        ) -> Result<Json<ScheduleJson>, ApiError> {
            act(caller, &st, &name, $action).await
        }
    };
}

action!(
    pause,
    "/api/v1/schedules/{name}/pause",
    ScheduleAction::Pause,
    Submit,
    "Pause a schedule: no runs until resumed.",
    "Role too weak (needs submit)"
);
action!(
    resume,
    "/api/v1/schedules/{name}/resume",
    ScheduleAction::Resume,
    Submit,
    "Resume a schedule from its next planned time.",
    "Role too weak (needs submit)"
);
action!(
    run_now,
    "/api/v1/schedules/{name}/run-now",
    ScheduleAction::RunNow,
    Submit,
    "One run now (the overlap policy holds).",
    "Role too weak (needs submit)"
);
/// Remove a schedule (admin); its past runs' tasks stay.
#[utoipa::path(delete, path = "/api/v1/schedules/{name}", tag = "schedules",
    params(("name" = String, Path, description = "Schedule name")),
    responses(
        (status = 200, description = "The schedule as it was", body = ScheduleJson),
        (status = 400, description = "Not a schedule name", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs admin)", body = ErrorResponse),
        (status = 404, description = "No such schedule", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn remove(
    caller: Caller<Admin>,
    State(st): State<Arc<ApiState>>,
    NamePath(name): NamePath,
) -> Result<Json<ScheduleJson>, ApiError> {
    act(caller, &st, &name, ScheduleAction::Remove).await
}
