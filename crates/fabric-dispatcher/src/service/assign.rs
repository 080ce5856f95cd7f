//! Work going out to workers: the placement loop, signed manifests, the
//! assignment exchange (events, report, ack), completion, and cancels.

use std::sync::Arc;

use fabric_net::StreamError;
use fabric_net::framed;
use fabric_proto::wire::{Ack, Assign, Report};
use fabric_proto::{Manifest, Signed, TaskId, TaskOutcome, TaskRecord, WorkerKey};
use fabric_store::{EventKind, StoreError};
use quinn::Connection;
use tracing::Instrument as _;

use super::ServiceError;
use super::state::Shared;
use crate::scheduler::{Completion, Scheduler};

/// Places ready tasks whenever something may have changed (a submit, a
/// freed slot, a registration, a tick) and starts an exchange per lease.
pub(crate) async fn place_loop(shared: Arc<Shared>) {
    loop {
        shared.place.notified().await;
        if !shared.leading() {
            continue;
        }
        let (leased, orphans) = lease_ready(&shared);
        if leased.is_empty() && orphans.is_empty() {
            continue;
        }
        if leased.is_empty() {
            shared
                .settle_or_log(orphans, "leases without a connection")
                .await;
            continue;
        }
        // A first attempt goes out at once and is not written: its record
        // stays `queued` with no attempt, and a restart skips attempt 1 (see
        // `Scheduler::restore`). Every later lease is written (one
        // transaction for the batch) and flushed before its manifest goes
        // out, so numbers never repeat. Writing first leases too cost a
        // fifth of the cluster's throughput (BENCHMARKS.md).
        shared
            .settle_or_log(orphans, "leases without a connection")
            .await;
        let (now, later): (Vec<_>, Vec<_>) = leased.into_iter().partition(|l| l.3);
        for (rec, conn, wk, _) in now {
            tokio::spawn(run_assignment(shared.clone(), rec, conn, wk));
        }
        if !later.is_empty() {
            let written = shared.ledger.save_tasks(later.iter().map(|(rec, ..)| rec));
            tokio::spawn(dispatch(shared.clone(), later, written));
        }
    }
}

/// Flushes the leases just written, then starts an exchange for each of
/// `leased` (those that waited for the flush) that still holds its lease
/// (it may have been cancelled or lost meanwhile); when the leases could
/// not be made durable, those go back to the queue.
async fn dispatch(shared: Arc<Shared>, leased: Vec<Leased>, written: Result<(), StoreError>) {
    let durable = match written {
        Ok(()) => shared.ledger.durable().await,
        Err(e) => Err(e),
    };
    let now = shared.now();
    let mut core = shared.core();
    if let Err(e) = durable {
        tracing::error!(error = %e, held_back = leased.len(), "cannot record new leases; those not sent yet go back to the queue");
        for (rec, _, wk, _) in &leased {
            core.sched
                .unlease(&rec.id, rec.attempt, wk, UNRECORDED_LEASE_DELAY_MS, now);
        }
        return;
    }
    for (rec, conn, wk, _) in leased {
        if core.sched.holds_lease(&rec.id, rec.attempt, &wk) {
            tokio::spawn(run_assignment(shared.clone(), rec, conn, wk));
        }
    }
}

/// A new lease, its worker's connection, and whether it may go out
/// unwritten (a first attempt).
type Leased = (TaskRecord, Connection, WorkerKey, bool);

/// How long a task whose lease could not be recorded waits before it is
/// offered again (the store is failing; retrying at once would spin).
const UNRECORDED_LEASE_DELAY_MS: u64 = 1_000;

/// New leases with their workers' connections; a lease whose worker has no
/// connection (it is going away) is lost at once instead of dropped.
fn lease_ready(shared: &Shared) -> (Vec<Leased>, Vec<crate::scheduler::Change>) {
    let now = shared.now();
    let mut core = shared.core();
    let mut leased = core.sched.place(now);
    // Cold tasks (reloaded by a restart) that placement reached are read
    // back whole, then placement goes on from there; a pass that warmed
    // none (the store failing) ends it until the next change.
    loop {
        let wanted = core.sched.wanted();
        if wanted.is_empty() {
            break;
        }
        let cold = core.sched.cold_count();
        if let Err(e) = shared.warm(&mut core, &wanted) {
            tracing::error!(error = %e, "cannot read queued tasks back from the store; placing them waits for the next change");
            break;
        }
        if core.sched.cold_count() >= cold {
            break;
        }
        leased.extend(core.sched.place_on(now));
    }
    let mut ready = Vec::with_capacity(leased.len());
    let mut orphans = Vec::new();
    for rec in leased {
        let Some(wk) = rec.worker else { continue };
        match core.conns.get(&wk).map(|c| c.conn.clone()) {
            Some(conn) => {
                let early = Scheduler::may_send_unwritten(&rec);
                if early {
                    let waited = now.saturating_sub(rec.submitted_ms);
                    shared
                        .metrics
                        .started(std::time::Duration::from_millis(waited));
                }
                shared.publish(rec.id, "started", None, || {
                    let name = core.conns.get(&wk).map(|c| c.info.name.clone());
                    format!(
                        "attempt {} on {}",
                        rec.attempt,
                        name.unwrap_or_else(|| wk.short())
                    )
                });
                ready.push((rec, conn, wk, early));
            }
            None => {
                // Registered in the scheduler without a connection: it is
                // going away. Forget it, so it is not chosen again; its
                // leases (this one included) are lost.
                tracing::warn!(task = %rec.id, worker = %wk.short(), "leased to a worker without a connection; forgetting the worker");
                orphans.extend(core.sched.remove_worker(&wk, now));
            }
        }
    }
    (ready, orphans)
}

/// One attempt on one worker, in a span naming the task and attempt.
async fn run_assignment(shared: Arc<Shared>, rec: TaskRecord, conn: Connection, wk: WorkerKey) {
    let span = tracing::info_span!(
        "task",
        task_id = %rec.id,
        attempt = rec.attempt,
        trace = %rec.trace(),
        worker = %wk.short()
    );
    async move {
        tracing::info!("assigned");
        let ended = exchange(&shared, &rec, &conn, wk).await;
        let now = shared.now();
        let change = {
            let mut core = shared.core();
            match &ended {
                Ok(None) => None,
                Ok(Some(reason)) => core.sched.refuse(&rec.id, rec.attempt, &wk, reason, now),
                // The connection was lost, or the worker re-registered on
                // a newer one: it may still run this attempt and report
                // late; otherwise its re-registration, its being declared
                // dead or the lease deadline ends the lease.
                Err(e)
                    if super::control::lost(&conn)
                        || core
                            .conns
                            .get(&wk)
                            .is_some_and(|c| c.conn.stable_id() != conn.stable_id()) =>
                {
                    tracing::info!(error = %e, "assignment stream lost with its connection; the lease waits");
                    None
                }
                // The stream broke: lost. Requeue it now whether or not the
                // connection is gone (a no-op when the lease was already
                // given away).
                Err(e) => {
                    tracing::warn!(error = %e, "assignment stream failed");
                    let reason = format!("assignment stream failed: {e}");
                    core.sched.abandon(&rec.id, rec.attempt, &wk, &reason, now)
                }
            }
        };
        if let Some(change) = change {
            shared
                .settle_or_log(vec![change], "an attempt that ended without a result")
                .await;
        }
    }
    .instrument(span)
    .await;
}

/// The manifest the worker checks before running anything; args and env
/// kept in the store are read back here.
fn manifest_for(shared: &Shared, rec: &TaskRecord) -> Result<Manifest, StoreError> {
    let now = shared.now();
    let (args, env) = match &rec.args_blob {
        Some(blob) => shared.store.args(blob)?.ok_or_else(|| {
            StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the args of task {} (blob {}) are not stored",
                    rec.id, blob.sha
                ),
            ))
        })?,
        None => (rec.spec.args.clone(), rec.spec.env.clone()),
    };
    Ok(Manifest {
        version: Manifest::VERSION,
        task_id: rec.id,
        attempt: rec.attempt,
        kind: rec.spec.kind.clone(),
        args,
        env,
        input_digest: rec.spec.input_digest(),
        limits: rec.spec.limits,
        issued_at_ms: now,
        expires_at_ms: now + shared.cfg.manifest_ttl.as_millis() as u64,
        trace: Some(rec.trace()),
        secrets: rec.spec.secrets.clone(),
    })
}

/// Sends the signed manifest and input, relays guest events to waiters,
/// records the report and acks it. `Some(reason)` when the worker refused.
async fn exchange(
    shared: &Shared,
    rec: &TaskRecord,
    conn: &Connection,
    wk: WorkerKey,
) -> Result<Option<String>, ServiceError> {
    let manifest = Signed::sign(shared.identity.signing_key(), &manifest_for(shared, rec)?)?;
    let (mut send, mut recv) = framed::open(conn, shared.cfg.net.max_frame).await?;
    // A large input goes as its reference; the worker fetches it by digest.
    send.send(&Assign::Run {
        manifest,
        input: rec.spec.input.clone(),
        input_blob: rec.spec.input_blob,
    })
    .await?;
    loop {
        match recv.expect::<Report>().await? {
            Report::Event(e) => shared.waiters.event(&rec.id, &e),
            Report::Refused { reason } => {
                tracing::warn!(%reason, "worker refused the assignment");
                send.send(&Ack { recorded: false }).await?;
                send.finish()?;
                return Ok(Some(reason));
            }
            Report::Done(outcome) => {
                let recorded = complete(shared, rec.id, rec.attempt, wk, *outcome).await?;
                send.send(&Ack { recorded }).await?;
                send.finish()?;
                return Ok(None);
            }
        }
    }
}

/// Records how an attempt ended: final (result written once, announced),
/// retried after a backoff, or dropped as stale. Returns whether this
/// report's result is the one recorded.
async fn complete(
    shared: &Shared,
    id: TaskId,
    attempt: u32,
    wk: WorkerKey,
    outcome: TaskOutcome,
) -> Result<bool, StoreError> {
    let now = shared.now();
    let (before, decision) = {
        let mut core = shared.core();
        let before = core.sched.task(&id).cloned();
        let decision = core.sched.complete(&id, attempt, &wk, outcome.status, now);
        (before, decision)
    };
    if !matches!(decision, Completion::Stale) {
        let run = std::time::Duration::from_millis(outcome.duration_ms);
        shared.metrics.attempt(run, outcome.fuel_used);
    }
    // Memory follows the store: only when the write itself fails is the
    // lease put back as it was (the worker hears an error, so the attempt
    // ends lost or reports again). A failed flush afterwards undoes
    // nothing: the write may well be on disk.
    let (recorded, flushed) = match write(shared, &decision, &outcome).await {
        Ok(written) => written,
        Err(e) => {
            tracing::error!(error = %e, "cannot record the attempt's result");
            let why = format!(
                "the dispatcher could not record attempt {attempt}'s result ({e}); the task goes on: wait for it again"
            );
            shared.waiters.failed(&id, &why);
            if let Some(before) = before {
                let change = shared.core().sched.reinstate(before, shared.now());
                shared
                    .settle_or_log(change.into_iter().collect(), "an undone completion")
                    .await;
            }
            return Err(e);
        }
    };
    let written = Written { recorded, flushed };
    announce(shared, id, attempt, wk, outcome, decision, written).await
}

/// What `write` did: whether this result was recorded, and how the flush
/// after it went.
struct Written {
    recorded: bool,
    flushed: Result<(), StoreError>,
}

/// Writes what `complete` decided (batched with other tasks' writes) and
/// makes it durable (the writer's own flush); whether this result was
/// recorded, and the flush's outcome. A stale report writes nothing.
async fn write(
    shared: &Shared,
    decision: &Completion,
    outcome: &TaskOutcome,
) -> Result<fabric_store::Durable, StoreError> {
    match decision {
        Completion::Stale => Ok((false, Ok(()))),
        Completion::Retry(rec) => shared
            .ledger
            .write_task_durable(rec)
            .await
            .map(|(_, flushed)| (false, flushed)),
        Completion::Final(rec) => shared.ledger.write_result_durable(rec, outcome).await,
    }
}

/// Logs and announces what `write` stored.
async fn announce(
    shared: &Shared,
    id: TaskId,
    attempt: u32,
    wk: WorkerKey,
    outcome: TaskOutcome,
    decision: Completion,
    written: Written,
) -> Result<bool, StoreError> {
    let Written { recorded, flushed } = written;
    match decision {
        Completion::Stale => {
            // The report of a run just cancelled, from the worker that
            // held it: its output and run time join the recorded cancel.
            if shared.cancelling.take(id, attempt, wk, shared.now()) {
                match shared.ledger.amend_cancelled(&id, &outcome) {
                    Ok(()) => tracing::debug!(attempt, "a cancelled run's report"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not add a cancelled run's output to its record")
                    }
                }
                return Ok(false);
            }
            // Routine after a cancel or a lease that moved on: recorded as
            // an event, not an operator's business.
            tracing::info!(attempt, "dropping a result from a stale attempt");
            let detail = format!("attempt {attempt} from {wk}");
            shared.event(Some(id), EventKind::StaleResult, detail);
            Ok(false)
        }
        Completion::Retry(rec) => {
            let detail = format!(
                "attempt {attempt} ended {}; retry {} of {} after backoff",
                outcome.status, rec.failures, rec.spec.retries
            );
            shared.event(Some(id), EventKind::Retry, detail);
            shared.announce_flushed(Vec::new(), flushed).await?;
            Ok(false)
        }
        Completion::Final(rec) => {
            if rec.dead_letter {
                let detail = format!("ended {}", outcome.status);
                shared.event(Some(id), EventKind::DeadLetter, detail);
            }
            let info = if recorded {
                rec.info(Some(outcome))
            } else {
                // Only the recorded result is ever announced.
                tracing::warn!("a result was already recorded; dropping this one");
                match (shared.store.task(&id)?, shared.store.result(&id)?) {
                    (Some(stored), Some(o)) => stored.info(Some(o)),
                    _ => rec.info(None),
                }
            };
            shared.announce_flushed(vec![info], flushed).await?;
            Ok(recorded)
        }
    }
}

/// A worker's report of an attempt whose own stream broke (it reconnected
/// and the lease was adopted): recorded like any report.
pub(crate) async fn late_report(
    shared: &Shared,
    wk: WorkerKey,
    id: TaskId,
    attempt: u32,
    outcome: TaskOutcome,
) -> Result<bool, StoreError> {
    tracing::info!(task = %id, attempt, "late report from a reconnected worker");
    complete(shared, id, attempt, wk, outcome).await
}

/// Tells a worker to stop a running attempt (best effort, in the
/// background: the task is already recorded as cancelled).
pub(crate) fn send_cancel(shared: &Shared, worker: WorkerKey, id: TaskId, attempt: u32) {
    let Some(conn) = shared
        .core()
        .conns
        .get(&worker)
        .map(|c| c.conn.clone())
        .filter(|c| c.close_reason().is_none())
    else {
        return;
    };
    let max = shared.cfg.net.max_frame;
    tokio::spawn(async move {
        let sent = async {
            let (mut s, _r) = framed::open(&conn, max).await?;
            s.send(&Assign::Cancel { id, attempt }).await?;
            s.finish()?;
            Ok::<_, StreamError>(())
        }
        .await;
        if let Err(e) = sent {
            tracing::warn!(task = %id, error = %e, "could not tell the worker to cancel");
        }
    });
}
