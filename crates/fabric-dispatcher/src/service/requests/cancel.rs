//! Cancelling a queued or running task.

use fabric_proto::wire::Response;
use fabric_proto::{TaskId, TaskOutcome, TaskStatus};
use fabric_store::EventKind;

use super::{Answer, RequestError};
use crate::service::assign;
use crate::service::state::Shared;

/// Cancels a live task: records it as cancelled (durably, then announced),
/// and tells its worker when it was running; the worker's report of the
/// stopped run later adds its output and run time to the record.
pub async fn cancel(shared: &Shared, id: TaskId) -> Answer {
    let now = shared.now();
    let (before, cancelled) = {
        let mut core = shared.core();
        shared.warm(&mut core, &[id])?;
        let before = core.sched.task(&id).cloned();
        core.deps.forget(&id);
        (before, core.sched.cancel(&id, now))
    };
    let Some((rec, running)) = cancelled else {
        return match shared.store.task(&id)? {
            Some(rec) => Err(RequestError::Conflict(format!(
                "task {id} already finished ({})",
                rec.status.map_or(rec.state.as_str(), |s| s.as_str())
            ))),
            None => Err(RequestError::no_task(&id)),
        };
    };
    let mut outcome = TaskOutcome::ended(TaskStatus::Cancelled, "cancelled by request");
    // A running task ran until now: its record says for how long.
    if running.is_some()
        && let Some(a) = rec.history.last()
        && let Some(ended) = a.ended_ms
    {
        outcome.duration_ms = ended.saturating_sub(a.started_ms);
    }
    if let Err(e) = shared.ledger.record_result(&rec, &outcome) {
        // Memory follows the store: the task is back as it was.
        if let Some(before) = before {
            let change = shared.core().sched.reinstate(before, shared.now());
            shared
                .settle_or_log(change.into_iter().collect(), "an undone cancel")
                .await;
        }
        return Err(e.into());
    }
    let was = if running.is_some() {
        "running"
    } else {
        "queued"
    };
    shared.event(Some(id), EventKind::Cancelled, format!("was {was}"));
    let info = rec.info(Some(outcome));
    shared.announce(vec![info.clone()]).await?;
    if let Some((worker, attempt)) = running {
        // Its worker stops it; the worker's report of the run then adds
        // the output and run time to this record (`assign::announce`).
        shared
            .cancelling
            .cancelled(id, attempt, worker, shared.now());
        assign::send_cancel(shared, worker, id, attempt);
    }
    Ok(Response::Task(Box::new(info)))
}
