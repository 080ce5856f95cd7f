//! Jobs: create (a DAG of steps), list, get, cancel, retry (the rescue).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fabric_proto::wire::Response;
use fabric_proto::{EachItem, JobId, JobSpec, StepSpec};

use super::ApiState;
use super::auth::{Admin, Caller, Read, Submit};
use super::error::{ApiError, ErrorResponse, QueryParams};
use super::spool::SpooledJson;
use super::tasks::{blob_of, kind_of, limits_of};
use super::types::{
    BlobRefJson, JobCreated, JobJson, JobListQuery, JobPage, JobTouched, NewJob, NewStep,
    StepCreated,
};
use super::whole::to_the_end;
use fabric_dispatcher::front::acting;
use fabric_dispatcher::front::jobs;

/// Default page of `GET /jobs`.
const DEFAULT_PAGE: u32 = 20;

fn job_id(text: &str) -> Result<JobId, ApiError> {
    text.parse()
        .map_err(|_| ApiError::bad(format!("{text:?} is not a job id (job-...)")))
}

/// The `{id}` of a job route: 400 (as JSON) when it is not a job id.
#[derive(Debug)]
pub(crate) struct JobPath(pub JobId);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for JobPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        job_id(&super::error::path_text(parts, state, "job id").await?).map(Self)
    }
}

fn step_of(s: NewStep) -> Result<StepSpec, ApiError> {
    let name = s.name;
    let prefix = format!("step {name:?}: ");
    let in_step = |e: ApiError| e.prefixed(&prefix);
    let kind = kind_of(s.module, s.command, s.files, s.outputs).map_err(in_step)?;
    let input = s
        .input_blob
        .as_ref()
        .map(|b| blob_of(b, "input_blob"))
        .transpose()
        .map_err(in_step)?;
    let each = s
        .each
        .into_iter()
        .map(|i| {
            let b = BlobRefJson {
                sha256: i.sha256,
                len: i.len,
            };
            Ok(EachItem {
                blob: blob_of(&b, "each")?,
                name: i.name,
            })
        })
        .collect::<Result<_, ApiError>>()
        .map_err(in_step)?;
    Ok(StepSpec {
        kind,
        args: s.args,
        env: s.env.into_iter().collect(),
        secrets: s.secrets.into_iter().collect(),
        input,
        limits: Some(limits_of(s.limits)),
        priority: s.priority.map(Into::into).unwrap_or_default(),
        retries: s.retries.unwrap_or(0),
        after: s.after,
        input_from: s.input_from,
        files_from: s.files_from,
        require: s.require,
        each,
        name,
    })
}

/// Queue a job: its DAG is checked (an unknown step or a cycle is refused,
/// naming the steps), then the job and all its tasks are stored and
/// flushed before the answer.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body = NewJob,
    responses(
        (status = 201, description = "Queued", body = JobCreated),
        (status = 400, description = "Bad input: an unknown step, a cycle, a bad field", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 404, description = "A module, input or file not uploaded", body = ErrorResponse),
        (status = 413, description = "Body over the cap", body = ErrorResponse),
        (status = 415, description = "Not JSON", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "Queue full, or too many unfinished jobs", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    body: SpooledJson<NewJob>,
) -> Result<(StatusCode, Json<JobCreated>), ApiError> {
    let NewJob { name, steps } = body.value;
    let steps = steps
        .into_iter()
        .map(step_of)
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
    let shared = st.shared.clone();
    let submitted = to_the_end(caller, async move {
        jobs::submit(&shared, JobSpec { name, steps }).await
    })
    .await??;
    match submitted {
        Response::JobSubmitted { id, tasks } => Ok((
            StatusCode::CREATED,
            Json(JobCreated {
                id: id.to_string(),
                steps: names
                    .into_iter()
                    .zip(tasks)
                    .map(|(name, tasks)| StepCreated {
                        name,
                        tasks: tasks.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
            }),
        )),
        _ => Err(ApiError::internal("unexpected answer to a job submit")),
    }
}

/// List jobs, newest first (without their steps).
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(JobListQuery),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Bad query", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn list(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    QueryParams(q): QueryParams<JobListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=jobs::MAX_JOB_PAGE).contains(&limit) {
        return Err(ApiError::bad(format!(
            "limit must be 1 to {}",
            jobs::MAX_JOB_PAGE
        )));
    }
    let before = q.before.as_deref().map(job_id).transpose()?;
    match jobs::list(&st.shared, limit, before.as_ref())? {
        Response::Jobs(views) => {
            let next_before = (views.len() == limit as usize)
                .then(|| views.last().map(|v| v.id.to_string()))
                .flatten();
            Ok(Json(JobPage {
                jobs: views.iter().map(JobJson::from).collect(),
                next_before,
            }))
        }
        _ => Err(ApiError::internal("unexpected answer to a job list")),
    }
}

/// A job, with each step's tasks and where they stand.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id (job-...)")),
    responses(
        (status = 200, description = "The job", body = JobJson),
        (status = 400, description = "Not a job id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 404, description = "No such job", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn get(
    _caller: Caller<Read>,
    State(st): State<Arc<ApiState>>,
    JobPath(id): JobPath,
) -> Result<Json<JobJson>, ApiError> {
    match jobs::get(&st.shared, &id)? {
        Response::Job(view) => Ok(Json(JobJson::from(&*view))),
        _ => Err(ApiError::internal("unexpected answer to a job query")),
    }
}

fn touched(resp: Response) -> Result<Json<JobTouched>, ApiError> {
    match resp {
        Response::JobTouched { id, tasks } => Ok(Json(JobTouched {
            id: id.to_string(),
            tasks,
        })),
        _ => Err(ApiError::internal("unexpected answer")),
    }
}

/// Cancel every unfinished task of a job.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "Job id (job-...)")),
    responses(
        (status = 200, description = "How many tasks were cancelled", body = JobTouched),
        (status = 400, description = "Not a job id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 404, description = "No such job", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    JobPath(id): JobPath,
) -> Result<Json<JobTouched>, ApiError> {
    let shared = st.shared.clone();
    touched(
        {
            let actor = caller.actor();
            to_the_end(
                caller,
                acting(actor, async move { jobs::cancel(&shared, id).await }),
            )
        }
        .await??,
    )
}

/// The rescue: once the job has finished, queue again every task that did
/// not succeed (and those it skipped), keeping the succeeded ones.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = String, Path, description = "Job id (job-...)")),
    responses(
        (status = 200, description = "How many tasks were queued again (0: all had succeeded)", body = JobTouched),
        (status = 400, description = "Not a job id", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs admin)", body = ErrorResponse),
        (status = 404, description = "No such job, or a module or input is gone", body = ErrorResponse),
        (status = 409, description = "The job is still running", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "Queue full", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn retry(
    caller: Caller<Admin>,
    State(st): State<Arc<ApiState>>,
    JobPath(id): JobPath,
) -> Result<Json<JobTouched>, ApiError> {
    let shared = st.shared.clone();
    touched(
        {
            let actor = caller.actor();
            to_the_end(
                caller,
                acting(actor, async move { jobs::retry(&shared, id).await }),
            )
        }
        .await??,
    )
}
