//! Tasks: create, list, get, output, files, cancel, retry.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_proto::wire::Response;
use fabric_proto::{BlobRef, Limits, Sha256, StagedFile, TaskId, TaskInfo, TaskKind, TaskSpec};

use super::ApiState;
use super::auth::{Admin, Caller, Read, Submit};
use super::error::{ApiError, ErrorResponse, QueryParams, TaskPath, task_id};
use super::spool::SpooledJson;
use super::types::{
    BlobRefJson, Created, LimitsJson, ListQuery, NewTask, OutputFileView, OutputView,
    StagedFileJson, TaskPage, TaskView,
};
use super::whole::to_the_end;
use fabric_dispatcher::front::acting;
use fabric_dispatcher::front::{cancel, query, retry, submit};

/// Default and largest page of `GET /tasks`.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;

fn sha(text: &str, what: &str) -> Result<Sha256, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("{what} {text:?} is not a SHA-256 in hex")))
}

/// What a body's `module` or `command` (with its files and outputs) runs.
pub(super) fn kind_of(
    module: Option<String>,
    command: Option<String>,
    files: Vec<StagedFileJson>,
    outputs: Vec<String>,
) -> Result<TaskKind, ApiError> {
    Ok(match (module, command) {
        (Some(m), None) => {
            if !files.is_empty() || !outputs.is_empty() {
                return Err(ApiError::bad(
                    "files and outputs are for native tasks (command), not wasm modules",
                ));
            }
            TaskKind::Wasm {
                module: sha(&m, "module")?,
            }
        }
        (None, Some(program)) => TaskKind::Command {
            program,
            files: files
                .into_iter()
                .map(|f| {
                    Ok(StagedFile {
                        blob: BlobRef {
                            sha: sha(&f.sha256, "file")?,
                            len: f.len,
                        },
                        path: f.path,
                        executable: f.executable,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
            outputs,
        },
        _ => {
            return Err(ApiError::bad(
                "give exactly one of module (a wasm task) or command (a native one)",
            ));
        }
    })
}

/// An uploaded blob's reference; `what` names the field in errors.
pub(super) fn blob_of(b: &BlobRefJson, what: &str) -> Result<BlobRef, ApiError> {
    Ok(BlobRef {
        sha: sha(&b.sha256, what)?,
        len: b.len,
    })
}

/// Limits, each one left out the default.
pub(super) fn limits_of(l: Option<LimitsJson>) -> Limits {
    let l = l.unwrap_or_default();
    let d = Limits::default();
    Limits {
        fuel: l.fuel.unwrap_or(d.fuel),
        memory_bytes: l.memory_bytes.unwrap_or(d.memory_bytes),
        timeout_ms: l.timeout_ms.unwrap_or(d.timeout_ms),
        disk_bytes: l.disk_bytes.unwrap_or(d.disk_bytes),
        ..d
    }
}

/// The spec a body asks for (admission checks it further).
pub(super) fn spec_of(t: NewTask) -> Result<TaskSpec, ApiError> {
    let kind = kind_of(t.module, t.command, t.files, t.outputs)?;
    let mut spec = TaskSpec::new(kind);
    spec.args = t.args;
    spec.env = t.env.into_iter().collect();
    spec.secrets = t.secrets.into_iter().collect();
    match (t.input_b64, t.input_blob) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad("give input_b64 or input_blob, not both"));
        }
        (Some(b64), None) => {
            spec.input = B64
                .decode(b64.as_bytes())
                .map_err(|e| ApiError::bad(format!("input_b64 is not base64: {e}")))?;
        }
        (None, Some(b)) => spec.input_blob = Some(blob_of(&b, "input_blob")?),
        (None, None) => {}
    }
    spec.limits = limits_of(t.limits);
    spec.priority = t.priority.map(Into::into).unwrap_or_default();
    spec.retries = t.retries.unwrap_or(0);
    spec.trace = t.trace;
    spec.require = t.require;
    spec.after = t
        .after
        .iter()
        .map(|id| task_id(id))
        .collect::<Result<_, _>>()?;
    spec.input_from = t.input_from.as_deref().map(task_id).transpose()?;
    spec.not_before_ms = t
        .not_before
        .as_deref()
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| u64::try_from(t.timestamp_millis()).unwrap_or(0))
                .map_err(|e| {
                    ApiError::bad(format!(
                        "not_before {text:?} is not an RFC 3339 time ({e}), e.g. 2026-12-07T03:00:00Z"
                    ))
                })
        })
        .transpose()?;
    spec.files_from = t
        .files_from
        .iter()
        .map(|id| task_id(id))
        .collect::<Result<_, _>>()?;
    Ok(spec)
}

/// Queue a task.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks",
    request_body = NewTask,
    responses(
        (status = 201, description = "Queued", body = Created),
        (status = 400, description = "Bad input", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 404, description = "Module, input or file not uploaded", body = ErrorResponse),
        (status = 413, description = "Body over the cap", body = ErrorResponse),
        (status = 415, description = "Not JSON", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "Queue full", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    body: SpooledJson<NewTask>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let spec = spec_of(body.value)?;
    let shared = st.shared.clone();
    let admitted = to_the_end(caller, async move { submit::submit(&shared, spec).await }).await??;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: admitted.id.to_string(),
            warning: admitted.warning,
        }),
    ))
}

/// List tasks, newest first.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tasks", body = TaskPage),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<TaskPage>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad(format!(
            "limit must be 1 to {MAX_PAGE}, not {limit}"
        )));
    }
    let before = q.cursor.as_deref().map(task_id).transpose()?;
    if let Some(trace) = &q.trace {
        fabric_proto::check_trace(trace).map_err(|e| ApiError::bad(format!("trace: {e}")))?;
        if q.state.is_some() {
            return Err(ApiError::bad("give state or trace, not both"));
        }
    }
    let (mut page, next_cursor) = super::listing::page(
        &st.shared,
        q.state.map(Into::into),
        q.trace.as_deref(),
        limit,
        before,
    )?;
    // Names of the workers that are registered now.
    if let Response::Workers(workers) = query::workers(&st.shared) {
        for t in &mut page {
            if let Some(w) = t.worker.and_then(|k| workers.iter().find(|w| w.key == k)) {
                t.worker_name = Some(w.info.name.clone());
            }
        }
    }
    Ok(Json(TaskPage {
        tasks: page.iter().map(TaskView::from).collect(),
        next_cursor,
    }))
}

/// One task's info (with its outcome when asked).
fn info(st: &ApiState, id: &TaskId, with_outcome: bool) -> Result<TaskInfo, ApiError> {
    match query::task(&st.shared, id, with_outcome)? {
        Response::Task(info) => Ok(*info),
        _ => Err(ApiError::internal("unexpected answer to a task query")),
    }
}

/// One task.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 400, description = "Not a task id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    TaskPath(id): TaskPath,
) -> Result<Json<TaskView>, ApiError> {
    let info = info(&st, &id, false)?;
    Ok(Json(TaskView::from(&info)))
}

/// A finished task's info and outcome; 409 while it has none.
fn finished(st: &ApiState, id: &TaskId) -> Result<(TaskInfo, fabric_proto::TaskOutcome), ApiError> {
    let mut info = info(st, id, true)?;
    match info.outcome.take() {
        Some(o) => Ok((info, o)),
        None => Err(ApiError::conflict(format!(
            "task {id} is {}; it has no output yet",
            info.state.as_str()
        ))),
    }
}

/// A finished task's output.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/output", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Its result", body = OutputView),
        (status = 400, description = "Not a task id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
        (status = 409, description = "Not finished yet", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn output(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    TaskPath(id): TaskPath,
) -> Result<Json<OutputView>, ApiError> {
    let (info, outcome) = finished(&st, &id)?;
    Ok(Json(OutputView::new(&info, &outcome)))
}

/// The files a finished native task brought back.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/files", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Its output files", body = [OutputFileView]),
        (status = 400, description = "Not a task id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
        (status = 409, description = "Not finished yet", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn files(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    TaskPath(id): TaskPath,
) -> Result<Json<Vec<OutputFileView>>, ApiError> {
    let (_, outcome) = finished(&st, &id)?;
    Ok(Json(
        outcome.files.iter().map(OutputFileView::from).collect(),
    ))
}

/// Cancel a queued or running task.
#[utoipa::path(delete, path = "/api/v1/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Cancelled", body = TaskView),
        (status = 400, description = "Not a task id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 404, description = "No such task", body = ErrorResponse),
        (status = 409, description = "Already finished", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    TaskPath(id): TaskPath,
) -> Result<Json<TaskView>, ApiError> {
    let shared = st.shared.clone();
    let cancelled = acting(
        caller.actor(),
        async move { cancel::cancel(&shared, id).await },
    );
    match to_the_end(caller, cancelled).await?? {
        Response::Task(info) => Ok(Json(TaskView::from(&*info))),
        _ => Err(ApiError::internal("unexpected answer to a cancel")),
    }
}

/// Queue a dead letter's task again, as a new task.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/retry", tag = "tasks",
    params(("id" = String, Path, description = "Id of a task in the dead-letter set")),
    responses(
        (status = 201, description = "Queued as a new task", body = Created),
        (status = 400, description = "Not a task id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs admin)", body = ErrorResponse),
        (status = 404, description = "No such task, or its module or input is gone", body = ErrorResponse),
        (status = 409, description = "Not a dead letter", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "Queue full", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn retry(
    caller: Caller<Admin>,
    State(st): State<Arc<ApiState>>,
    TaskPath(id): TaskPath,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let shared = st.shared.clone();
    let retried = acting(
        caller.actor(),
        async move { retry::retry(&shared, id).await },
    );
    let admitted = to_the_end(caller, retried).await??;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            id: admitted.id.to_string(),
            warning: admitted.warning,
        }),
    ))
}
