//! `POST /api/v1/tasks/batch`: many tasks in one request, stored in one
//! transaction and acknowledged after one flush, all or none.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fabric_proto::wire::MAX_SUBMIT_BATCH;

use super::ApiState;
use super::auth::{Caller, Submit};
use super::error::{ApiError, ErrorResponse};
use super::spool::SpooledJson;
use super::tasks::spec_of;
use super::types::{Created, CreatedMany, NewTasks};
use fabric_dispatcher::front::submit;

/// Queue many tasks at once.
#[utoipa::path(post, path = "/api/v1/tasks/batch", tag = "tasks",
    request_body = NewTasks,
    responses(
        (status = 201, description = "All queued", body = CreatedMany),
        (status = 400, description = "Bad input (the message names the task: `task 3 of 10: ...`); none was queued", body = ErrorResponse),
        (status = 401, description = "No or unknown token", body = ErrorResponse),
        (status = 403, description = "Role too weak (needs submit)", body = ErrorResponse),
        (status = 404, description = "Module, input or file not uploaded; none was queued", body = ErrorResponse),
        (status = 413, description = "Body over the cap, or more than 1,000 tasks", body = ErrorResponse),
        (status = 415, description = "Not JSON", body = ErrorResponse),
        (status = 429, description = "Rate limited", body = ErrorResponse),
        (status = 503, description = "Queue full", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create(
    caller: Caller<Submit>,
    State(st): State<Arc<ApiState>>,
    body: SpooledJson<NewTasks>,
) -> Result<(StatusCode, Json<CreatedMany>), ApiError> {
    let tasks = body.value.tasks;
    let count = tasks.len();
    if count == 0 {
        return Err(ApiError::bad(format!(
            "tasks is empty: give 1 to {MAX_SUBMIT_BATCH} tasks"
        )));
    }
    // More than MAX_SUBMIT_BATCH is refused by admission (413), before
    // any spec is looked at.
    let specs = tasks
        .into_iter()
        .enumerate()
        .map(|(i, t)| spec_of(t).map_err(|e| e.prefixed(&format!("task {} of {count}: ", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    let shared = st.shared.clone();
    let admitted =
        crate::whole::to_the_end(
            caller,
            async move { submit::submit_many(&shared, specs).await },
        )
        .await??;
    Ok((
        StatusCode::CREATED,
        Json(CreatedMany {
            tasks: admitted
                .into_iter()
                .map(|a| Created {
                    id: a.id.to_string(),
                    warning: a.warning,
                })
                .collect(),
        }),
    ))
}
