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
use crate::scheduler::Completion;

/// Places ready tasks whenever something may have changed (a submit, a
/// freed slot, a registration, a tick) and starts an exchange per lease.
pub(crate) async fn place_loop(shared: Arc<Shared>) {
    loop {
        shared.place.notified().await;
        // Leases live in memory only: a restart voids every lease anyway
        // (those tasks requeue), and a re-issued attempt number is told
        // apart by its manifest's signing instant.
        for (rec, conn, wk) in lease_ready(&shared) {
            tokio::spawn(run_assignment(shared.clone(), rec, conn, wk));
        }
    }
}

fn lease_ready(shared: &Shared) -> Vec<(TaskRecord, Connection, WorkerKey)> {
    let now = shared.now();
    let mut core = shared.core();
    let leased = core.sched.place(now);
    leased
        .into_iter()
        .filter_map(|rec| {
            let wk = rec.worker?;
            let conn = core.conns.get(&wk)?.conn.clone();
            Some((rec, conn, wk))
        })
        .collect()
}

/// One attempt on one worker, in a span naming the task and attempt.
async fn run_assignment(shared: Arc<Shared>, rec: TaskRecord, conn: Connection, wk: WorkerKey) {
    let span = tracing::info_span!(
        "task",
        task_id = %rec.id,
        attempt = rec.attempt,
        worker = %wk.short()
    );
    async move {
        let lost = match exchange(&shared, &rec, &conn, wk).await {
            Ok(None) => return,
            Ok(Some(reason)) => format!("refused by the worker: {reason}"),
            Err(e) => {
                tracing::warn!(error = %e, "assignment stream failed");
                format!("assignment stream failed: {e}")
            }
        };
        // The attempt ended without a result of the task's own. Requeue it
        // now whether or not the connection is gone: if the worker
        // re-registered on a new connection meanwhile, nobody else would.
        // (A no-op when the lease was already given away.)
        let now = shared.now();
        let change = shared
            .core()
            .sched
            .abandon(&rec.id, rec.attempt, &wk, &lost, now);
        if let Some(change) = change {
            shared.settle_or_log(vec![change], "a lost attempt").await;
        }
    }
    .instrument(span)
    .await;
}

/// The manifest the worker checks before running anything.
fn manifest_for(shared: &Shared, rec: &TaskRecord) -> Manifest {
    let now = shared.now();
    Manifest {
        version: Manifest::VERSION,
        task_id: rec.id,
        attempt: rec.attempt,
        kind: rec.spec.kind.clone(),
        args: rec.spec.args.clone(),
        env: rec.spec.env.clone(),
        input_digest: rec.spec.input_digest(),
        limits: rec.spec.limits,
        issued_at_ms: now,
        expires_at_ms: now + shared.cfg.manifest_ttl.as_millis() as u64,
    }
}

/// Sends the signed manifest and input, relays guest events to waiters,
/// records the report and acks it. `Some(reason)` when the worker refused.
async fn exchange(
    shared: &Shared,
    rec: &TaskRecord,
    conn: &Connection,
    wk: WorkerKey,
) -> Result<Option<String>, ServiceError> {
    let manifest = Signed::sign(shared.identity.signing_key(), &manifest_for(shared, rec))?;
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
    let decision = shared
        .core()
        .sched
        .complete(&id, attempt, &wk, outcome.status, now);
    match decision {
        Completion::Stale => {
            tracing::warn!("dropping a result from a stale attempt");
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
            shared.store.save_task(&rec)?;
            shared.announce(Vec::new()).await?;
            Ok(false)
        }
        Completion::Final(rec) => {
            if rec.dead_letter {
                let detail = format!("ended {}", outcome.status);
                shared.event(Some(id), EventKind::DeadLetter, detail);
            }
            let recorded = shared.store.record_result(&rec, &outcome)?;
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
            shared.announce(vec![info]).await?;
            Ok(recorded)
        }
    }
}

/// Tells a worker to stop a running attempt (best effort, in the
/// background: the task is already recorded as cancelled).
pub(crate) fn send_cancel(shared: &Shared, worker: WorkerKey, id: TaskId, attempt: u32) {
    let Some(conn) = shared.core().conns.get(&worker).map(|c| c.conn.clone()) else {
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
