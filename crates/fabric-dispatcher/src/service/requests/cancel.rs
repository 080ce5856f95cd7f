//! Cancelling a queued or running task.

use fabric_proto::wire::Response;
use fabric_proto::{TaskId, TaskOutcome, TaskStatus};
use fabric_store::EventKind;

use super::{Answer, RequestError};
use crate::service::assign;
use crate::service::state::Shared;

/// How long a cancel waits for the worker's report of the run it stopped.
const REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Cancels a live task: when it runs, has its worker stop it (waiting a
/// little for the worker's report of the run), then records it as
/// cancelled (durably, then announced).
pub(crate) async fn cancel(shared: &Shared, id: TaskId) -> Answer {
    let now = shared.now();
    let (before, cancelled) = {
        let mut core = shared.core();
        let before = core.sched.task(&id).cloned();
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
    // Stop it first, and keep what its worker reports of the run: its run
    // time and the output it had made (what `fabric run` streamed). A
    // worker that does not answer in time leaves the outcome above.
    if let Some((worker, attempt)) = running {
        let report = shared.cancelling.expect(id, attempt);
        assign::send_cancel(shared, worker, id, attempt);
        let reported = tokio::time::timeout(REPORT_WAIT, report).await;
        shared.cancelling.done(id, attempt);
        if let Ok(Ok(mut run)) = reported {
            run.status = TaskStatus::Cancelled;
            run.message = Some("cancelled by request".to_owned());
            outcome = run;
        }
    }
    if let Err(e) = shared.store.record_result(&rec, &outcome) {
        // Memory follows the store: the task is back as it was (a run its
        // worker already stopped is then found lost at its lease's end, and
        // runs again).
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
    Ok(Response::Task(Box::new(info)))
}
