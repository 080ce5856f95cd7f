//! Admission of a new task: checked, stored and flushed, then queued.

use fabric_proto::{TaskId, TaskKind, TaskRecord, TaskSpec};

use super::RequestError;
use crate::admission;
use crate::service::state::Shared;

/// An admitted task's id, and why it may wait long, if it may.
pub(crate) struct Admitted {
    /// The task.
    pub id: TaskId,
    /// What no registered worker offers it (it stays queued until one does).
    pub warning: Option<String>,
}

/// Admits a task; its id is answered only once the record is durable.
pub(crate) async fn submit(shared: &Shared, spec: TaskSpec) -> Result<Admitted, RequestError> {
    admission::check_spec(&spec, &shared.cfg.caps).map_err(RequestError::Refused)?;
    if let TaskKind::Wasm { module } = &spec.kind
        && !shared.store.has_blob(module)?
    {
        return Err(RequestError::NotFound(format!(
            "module {module} is not stored on the dispatcher; upload it first"
        )));
    }
    let seq = shared.store.next_seq()?;
    let rec = TaskRecord::queued(TaskId::new(), spec, seq, shared.now());
    shared.store.save_task(&rec)?;
    shared.commit.durable().await?;
    let id = rec.id;
    let warning = {
        let mut core = shared.core();
        let warning = core.sched.unmet_requirement(&rec);
        core.sched.submit(rec);
        warning
    };
    shared.place.notify_one();
    Ok(Admitted { id, warning })
}
