//! Retrying a dead letter: its spec is admitted again as a new task (a
//! recorded result is final, so the old task keeps it), and the old one
//! leaves the dead-letter set.

use fabric_proto::TaskId;
use fabric_store::EventKind;

use super::RequestError;
use super::submit::{self, Admitted};
use crate::service::state::Shared;

/// One retry at a time, so two retries of one dead letter (two admins, or
/// a client trying again after a timeout) make one new task, not two.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Retries dead letter `id` as a new task.
pub async fn retry(shared: &Shared, id: TaskId) -> Result<Admitted, RequestError> {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(rec) = shared.store.task(&id)? else {
        return Err(RequestError::no_task(&id));
    };
    // A job file's task is rescued with its job, which keeps the job's
    // record right (a task retried alone would run again in a rescue).
    if let Some(job) = rec
        .spec
        .trace
        .as_deref()
        .and_then(|t| t.parse::<fabric_proto::JobId>().ok())
        && shared.store.job(&job)?.is_some()
    {
        return Err(RequestError::Conflict(format!(
            "task {id} belongs to job {job}: rescue the job instead (fabric job retry {job}), which reruns what did not succeed"
        )));
    }
    if !rec.dead_letter {
        return Err(RequestError::Conflict(format!(
            "task {id} is not in the dead-letter set ({}); only dead letters are retried",
            rec.status.map_or(rec.state.as_str(), |s| s.as_str())
        )));
    }
    if !rec.spec.secrets.is_empty() {
        let names: Vec<&str> = rec.spec.secrets.iter().map(|(k, _)| k.as_str()).collect();
        return Err(RequestError::Conflict(format!(
            "task {id} ran with secrets ({}), whose values were dropped when it ended; submit it again with them",
            names.join(", ")
        )));
    }
    let Some(spec) = submit::whole_spec(shared, &rec)? else {
        return Err(RequestError::NotFound(format!(
            "the args and env of task {id} are no longer stored (blob retention); submit it again"
        )));
    };
    let admitted = submit::submit(shared, spec).await?;
    if shared.ledger.clear_dead_letter(&id)? {
        shared.event(
            Some(id),
            EventKind::Retry,
            format!("dead letter retried as {}", admitted.id),
        );
        shared.ledger.durable().await?;
    }
    Ok(admitted)
}
