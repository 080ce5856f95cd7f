//! Admission of a new task: checked, stored and flushed, then queued.
//!
//! The queue has a depth (`AdmissionCaps::max_queued`), and an input over
//! [`INLINE_INPUT_MAX`] never reaches the scheduler: it is a chunked blob in
//! the store (uploaded by the client, or stored here when it came inline)
//! and the record carries only its [`BlobRef`](fabric_proto::BlobRef).
//! Args and env over [`INLINE_ARGS_MAX`] go the same way
//! (`TaskRecord::args_blob`): the scheduler keeps what placement needs.

use fabric_proto::wire::{ErrorBody, ErrorCode, MAX_SUBMIT_BATCH};
use fabric_proto::{INLINE_INPUT_MAX, TaskId, TaskKind, TaskRecord, TaskSpec};
use fabric_store::INLINE_ARGS_MAX;

use super::RequestError;
use crate::admission;
use crate::service::state::Shared;

/// An admitted task's id, and why it may wait long, if it may.
pub struct Admitted {
    /// The task.
    pub id: TaskId,
    /// What no registered worker offers it (it stays queued until one does).
    pub warning: Option<String>,
}

/// Admits a task; its id is answered only once the record is durable.
pub async fn submit(shared: &Shared, spec: TaskSpec) -> Result<Admitted, RequestError> {
    let mut admitted = admit(shared, vec![(TaskId::new(), spec)], Batch::One).await?;
    admitted
        .pop()
        .ok_or_else(|| RequestError::Internal("no task was admitted".into()))
}

/// Admits many tasks, all or none: the ids are answered once every record
/// is durable (one flush for all, the writes sharing transactions). A spec
/// that is refused refuses the batch, naming its place in it.
pub async fn submit_many(
    shared: &Shared,
    specs: Vec<TaskSpec>,
) -> Result<Vec<Admitted>, RequestError> {
    if specs.len() > MAX_SUBMIT_BATCH {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "{} tasks in one request; at most {MAX_SUBMIT_BATCH} may be submitted at once",
                specs.len()
            ),
        )));
    }
    let specs = specs.into_iter().map(|s| (TaskId::new(), s)).collect();
    admit(shared, specs, Batch::Many).await
}

/// What a batch of specs is.
pub enum Batch<'a> {
    /// One task.
    One,
    /// Independent tasks (`submit_many`).
    Many,
    /// A job's tasks, in an order where each comes after its parents
    /// (which may be tasks of the batch); its record is stored first. With
    /// `scheduled`, a schedule's run (see [`Batch::Scheduled`]).
    Job {
        /// The job.
        record: &'a fabric_proto::JobRecord,
        /// A schedule's run.
        scheduled: bool,
    },
    /// A schedule's run: its program was checked when the schedule was
    /// added, so it waits for a worker that allows it (one may not have
    /// registered yet after a restart) rather than being refused.
    Scheduled,
}

/// Admits a schedule's run (see [`Batch::Scheduled`]).
pub async fn submit_scheduled(shared: &Shared, spec: TaskSpec) -> Result<Admitted, RequestError> {
    let mut admitted = admit(shared, vec![(TaskId::new(), spec)], Batch::Scheduled).await?;
    admitted
        .pop()
        .ok_or_else(|| RequestError::Internal("no task was admitted".into()))
}

/// Admits `specs` under the ids given, all or none; see [`submit_many`].
pub async fn admit(
    shared: &Shared,
    specs: Vec<(TaskId, TaskSpec)>,
    batch: Batch<'_>,
) -> Result<Vec<Admitted>, RequestError> {
    let count = specs.len();
    // Room is reserved until the tasks are queued, so concurrent submits
    // cannot all pass the check and overshoot the bound together.
    let mut room = Reserved::room(shared, count)?;
    let job = match batch {
        Batch::Job { record, .. } => Some(record),
        _ => None,
    };
    let ids: Option<std::collections::HashSet<TaskId>> =
        job.map(|_| specs.iter().map(|(id, _)| *id).collect());
    let mut recs = Vec::with_capacity(count);
    // Modules found stored: a batch of one module's tasks looks it up once.
    let mut modules = std::collections::HashSet::new();
    for (i, (id, spec)) in specs.into_iter().enumerate() {
        let waits_for_worker = matches!(
            batch,
            Batch::Scheduled
                | Batch::Job {
                    scheduled: true,
                    ..
                }
        );
        let rec = prepare(
            shared,
            id,
            spec,
            ids.as_ref(),
            waits_for_worker,
            &mut modules,
        )
        .map_err(|e| match batch {
            Batch::One | Batch::Scheduled => e,
            _ => e.in_batch(i, count),
        })?;
        recs.push(rec);
    }
    // One transaction for all of them and their job (all or none), then
    // one flush before any id is answered.
    let recs = if count == 1 && job.is_none() {
        let (_, flushed) = shared.ledger.write_task_durable(&recs[0]).await?;
        flushed?;
        recs
    } else {
        let recs = shared.ledger.save_batch(recs, job).await?;
        shared.ledger.durable().await?;
        recs
    };
    let mut admitted = Vec::with_capacity(count);
    let mut released = Vec::new();
    let mut skipped = Vec::new();
    for mut rec in recs {
        let id = rec.id;
        tracing::info!(task_id = %id, trace = %rec.trace(), "admitted");
        shared.publish(id, "submitted", None, || match &rec.spec.kind {
            TaskKind::Wasm { module } => format!("module {}", &module.to_hex()[..12]),
            TaskKind::Command { program, .. } => format!("command {program}"),
        });
        let warning = {
            let mut core = shared.core();
            let warning = core.sched.unmet_requirement(&rec);
            if rec.spec.after.is_empty() {
                // Stored as it is here: held cold when the queue is deep.
                core.sched.submit_stored(rec);
            } else {
                let parents = super::after::classify(&core.sched, &shared.store, &rec.spec.after)?;
                if let Some((parent, status)) = parents.failed {
                    rec.state = fabric_proto::TaskState::Done;
                    rec.status = Some(fabric_proto::TaskStatus::Skipped);
                    skipped.push((rec, super::after::skipped(parent, status)));
                } else if parents.unfinished.is_empty() {
                    rec.state = if rec.not_before_ms > 0 {
                        fabric_proto::TaskState::Scheduled
                    } else {
                        fabric_proto::TaskState::Queued
                    };
                    super::after::fill_input(&shared.store, &mut rec)?;
                    core.sched.submit(rec.clone());
                    released.push(rec);
                } else {
                    core.deps.wait(id, &parents.unfinished);
                    core.sched.hold(rec);
                }
            }
            // Counted in the queue from here on: its reservation goes
            // under the same lock, so a concurrent submit never counts it
            // twice (and refuses a batch that fits).
            room.settle_one();
            warning
        };
        shared.metrics.submitted();
        admitted.push(Admitted { id, warning });
    }
    // Queued at once (their parents had all succeeded): the record says
    // so at the next flush; a restart before it finds them held and
    // releases them again.
    if !released.is_empty() {
        shared.ledger.save_batch(released, None).await?;
    }
    let mut ended = Vec::new();
    for (rec, outcome) in skipped {
        shared.ledger.write_result(&rec, &outcome).await?;
        ended.push(rec.info(Some(outcome)));
    }
    if !ended.is_empty() {
        shared.announce(ended).await?;
    }
    shared.metrics.submit_request();
    shared.place.notify_one();
    Ok(admitted)
}

/// Queue room held by submits on their way in; given back when dropped
/// (their tasks are queued by then, or they failed).
struct Reserved<'a> {
    shared: &'a Shared,
    count: usize,
}

impl<'a> Reserved<'a> {
    fn room(shared: &'a Shared, count: usize) -> Result<Self, RequestError> {
        use std::sync::atomic::Ordering::SeqCst;
        let max_queued = shared.cfg.caps.max_queued;
        // Both read under the core lock, where tasks move from reserved to
        // queued: a task is counted once, whatever other submits do.
        let core = shared.core();
        let queued = core.sched.queued() + core.deps.held();
        let admitting = shared.admitting.fetch_add(count, SeqCst);
        if queued + admitting + count > max_queued {
            shared.admitting.fetch_sub(count, SeqCst);
            return Err(RequestError::Refused(admission::queue_full(max_queued)));
        }
        drop(core);
        Ok(Self { shared, count })
    }
}

impl Reserved<'_> {
    /// One reserved task is in the queue now (call under the core lock).
    fn settle_one(&mut self) {
        if self.count > 0 {
            self.count -= 1;
            self.shared
                .admitting
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.shared
            .admitting
            .fetch_sub(self.count, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Checks one spec and makes its record (its big input and args stored
/// as blobs), not yet written.
fn prepare(
    shared: &Shared,
    id: TaskId,
    mut spec: TaskSpec,
    batch: Option<&std::collections::HashSet<TaskId>>,
    waits_for_worker: bool,
    modules: &mut std::collections::HashSet<fabric_proto::Sha256>,
) -> Result<TaskRecord, RequestError> {
    admission::check_spec(&spec, &shared.cfg.caps).map_err(RequestError::Refused)?;
    super::after::check(shared, &mut spec, batch)?;
    // A native program no worker allows would wait for an operator: refuse
    // it now, as the user's mistake (exit 2).
    if let TaskKind::Command { program, .. } = &spec.kind
        && !waits_for_worker
        && !shared.core().sched.some_worker_runs(&spec.kind)
    {
        return Err(RequestError::Refused(ErrorBody::new(
            ErrorCode::BadRequest,
            format!(
                "no worker allows the program {program:?} (a worker runs a program only when started with --allow {program})"
            ),
        )));
    }
    if let TaskKind::Wasm { module } = &spec.kind
        && !modules.contains(module)
    {
        if !shared.store.has_module(module)? {
            return Err(RequestError::NotFound(format!(
                "module {module} is not stored on the dispatcher; upload it first (as a module: a blob is not one)"
            )));
        }
        modules.insert(*module);
    }
    if let TaskKind::Command { files, .. } = &spec.kind
        && let Some(f) = files.iter().find(|f| {
            !matches!(
                super::blobs::held(shared, &f.blob.sha, Some(f.blob.len)),
                Ok(true)
            )
        })
    {
        return Err(RequestError::NotFound(format!(
            "file {} ({} bytes, {}) is not stored on the dispatcher; upload it first",
            f.path, f.blob.len, f.blob.sha
        )));
    }
    if let Some(blob) = &spec.input_blob {
        if !super::blobs::held(shared, &blob.sha, Some(blob.len))? {
            return Err(RequestError::NotFound(format!(
                "input blob {} ({} bytes) is not stored on the dispatcher; upload it first",
                blob.sha, blob.len
            )));
        }
    } else if spec.input.len() > INLINE_INPUT_MAX && !shared.ledger.is_raft() {
        spec.input_blob = Some(shared.store.put_chunked(&spec.input)?);
        spec.input = Vec::new();
    }
    if shared.ledger.is_raft() {
        // In a group, inline input, args and env travel in the task's
        // record (the log); uploaded blobs went through the log already.
        super::super::group::check_replicable(&spec)?;
    }
    let args_blob = if spec.args_env_bytes() > INLINE_ARGS_MAX && !shared.ledger.is_raft() {
        let blob = shared.store.put_args(&spec.args, &spec.env)?;
        spec.args = Vec::new();
        spec.env = Vec::new();
        Some(blob)
    } else {
        None
    };
    // A task without a correlation id gets one: its own id's text.
    spec.trace.get_or_insert_with(|| id.to_string());
    let seq = shared.store.next_seq()?;
    let mut rec = TaskRecord::queued(id, spec, seq, shared.now());
    rec.args_blob = args_blob;
    // Not before a time (`--delay`, `--at`): scheduled until then, in the
    // queue's delayed set; a time already past queues it at once.
    if let Some(at) = rec.spec.not_before_ms {
        let now = shared.now();
        if at > now.saturating_add(fabric_proto::MAX_DELAY_MS) {
            return Err(RequestError::Refused(ErrorBody::new(
                ErrorCode::BadRequest,
                "not_before: at most a year ahead",
            )));
        }
        if at > now {
            rec.not_before_ms = at;
            rec.state = fabric_proto::TaskState::Scheduled;
        }
    }
    // Held until its parents are looked at (under the scheduler's lock,
    // once it is stored): a restart in between finds it held, not queued.
    if !rec.spec.after.is_empty() {
        rec.state = fabric_proto::TaskState::Waiting;
    }
    Ok(rec)
}

/// `rec`'s spec whole: with its args and env read back from the store when
/// they were kept there. `None` when that blob is gone.
pub fn whole_spec(shared: &Shared, rec: &TaskRecord) -> Result<Option<TaskSpec>, RequestError> {
    let mut spec = rec.spec.clone();
    if let Some(blob) = &rec.args_blob {
        let Some((args, env)) = shared.store.args(blob)? else {
            return Ok(None);
        };
        spec.args = args;
        spec.env = env;
    }
    Ok(Some(spec))
}
