//! A worker's control stream: registration, heartbeats and drain, and
//! forgetting the worker when the stream ends.

use std::sync::Arc;

use fabric_net::PublicKey;
use fabric_net::framed::{FramedRecv, FramedSend};
use fabric_proto::WorkerKey;
use fabric_proto::wire::{Response, WorkerInfo, WorkerMsg};
use fabric_store::EventKind;
use quinn::Connection;

use super::ServiceError;
use super::state::{Shared, WorkerConn};
use crate::scheduler::{Change, Registration};

/// Serves a worker's control stream from its registration until it ends.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: PublicKey,
    info: WorkerInfo,
    mut send: FramedSend,
    mut recv: FramedRecv,
) -> Result<(), ServiceError> {
    let info = super::caps::admit_registration(shared, info);
    let wk = WorkerKey(key.to_bytes());
    let ended = match registered(shared, conn, wk, &info, &mut send, &mut recv).await {
        Ok(reason) => reason,
        Err(e) => e.to_string(),
    };
    if lost(conn) {
        // It may come back: its runs keep their leases until then, or
        // until it is declared dead.
        disconnect(shared, conn, wk);
        tracing::warn!(reason = %ended, "lost the worker's connection; its leases wait for it");
        let detail = format!("{wk}: {ended}; its leases wait for it to come back");
        shared.event(None, EventKind::WorkerGone, detail);
        return Ok(());
    }
    let changes = forget(shared, conn, wk, &ended);
    tracing::info!(reason = %ended, requeued = changes.len(), "worker gone");
    shared.event(None, EventKind::WorkerGone, format!("{wk}: {ended}"));
    shared.settle(changes).await?;
    Ok(())
}

/// Whether the connection was lost (timed out, reset) rather than closed
/// by either side.
pub(crate) fn lost(conn: &Connection) -> bool {
    matches!(
        conn.close_reason(),
        Some(quinn::ConnectionError::TimedOut | quinn::ConnectionError::Reset)
    )
}

/// Registration and the heartbeat loop; returns why the stream ended. The
/// caller forgets the worker on every way out, errors included.
async fn registered(
    shared: &Arc<Shared>,
    conn: &Connection,
    wk: WorkerKey,
    info: &WorkerInfo,
    send: &mut FramedSend,
    recv: &mut FramedRecv,
) -> Result<String, ServiceError> {
    let registration = register(shared, conn, wk, info);
    tracing::info!(
        name = %info.name,
        slots = info.slots,
        adopted = info.running.len() - registration.stray.len(),
        stray = registration.stray.len(),
        "worker registered"
    );
    let detail = format!(
        "{wk} ({}): {} slots; adopted {} runs, cancelled {}",
        info.name,
        info.slots,
        info.running.len() - registration.stray.len(),
        registration.stray.len()
    );
    shared.event(None, EventKind::WorkerRegistered, detail);
    shared.settle(registration.changes).await?;
    send.send(&Response::Registered {
        heartbeat_ms: shared.cfg.sched.heartbeat_ms,
        cancel: registration.stray,
    })
    .await?;
    shared.place.notify_one();
    Ok(loop {
        match recv.recv::<WorkerMsg>().await {
            Ok(Some(WorkerMsg::Heartbeat { running })) => {
                if !heartbeat(shared, wk, running) {
                    break "declared dead earlier; it must register afresh".to_owned();
                }
            }
            Ok(Some(WorkerMsg::Draining)) => {
                tracing::info!("worker is draining");
                shared.core().sched.drain_worker(&wk);
            }
            Ok(None) => break "closed its control stream".to_owned(),
            Err(e) => break e.to_string(),
        }
    })
}

fn register(shared: &Shared, conn: &Connection, wk: WorkerKey, info: &WorkerInfo) -> Registration {
    let now = shared.now();
    let mut core = shared.core();
    let registration = core.sched.add_worker(wk, info, &info.running, now);
    core.gone.back(&wk);
    let old = core.conns.insert(
        wk,
        WorkerConn {
            conn: conn.clone(),
            info: info.clone(),
        },
    );
    // One connection per worker key: an older one is closed.
    if let Some(old) = old
        && old.conn.stable_id() != conn.stable_id()
    {
        old.conn.close(
            REPLACED.into(),
            b"the worker registered on a new connection",
        );
    }
    registration
}

/// Records a heartbeat; false when the worker was declared dead meanwhile
/// (its connection is being closed: it must register afresh, which undoes
/// nothing it was told before, a drain included).
fn heartbeat(shared: &Shared, wk: WorkerKey, running: u32) -> bool {
    let now = shared.now();
    shared.core().sched.heartbeat(&wk, running, now)
}

/// Close code for a worker declared dead (missed heartbeats): it stops what
/// it runs and registers afresh.
pub(crate) const DECLARED_DEAD: u32 = 2;
/// Close code for a connection replaced by a newer one of the same worker.
const REPLACED: u32 = 3;

/// Closes the connections of workers the scheduler declared dead (called
/// under the same lock as the tick that declared them, so a worker that
/// registers again meanwhile keeps its new connection).
pub(crate) fn close_dead(core: &mut super::state::Core, dead: &[WorkerKey], now: u64) {
    for wk in dead {
        let why = "declared dead: missed 3 heartbeats".to_owned();
        if let Some(c) = core.forget_conn(wk, fabric_proto::wire::WorkerState::Down, why, now) {
            tracing::warn!(worker = %wk.short(), "closing the connection of a worker declared dead");
            c.conn
                .close(DECLARED_DEAD.into(), b"declared dead: missed heartbeats");
        }
    }
}

/// Marks the worker disconnected (see
/// [`Scheduler::disconnect_worker`](crate::scheduler::Scheduler::disconnect_worker)),
/// unless it already re-registered on a newer connection.
fn disconnect(shared: &Shared, conn: &Connection, wk: WorkerKey) {
    let mut core = shared.core();
    let current = core
        .conns
        .get(&wk)
        .is_some_and(|c| c.conn.stable_id() == conn.stable_id());
    // The connection entry stays (closed), so `workers` can show the worker
    // as down; it goes when the worker registers again or is declared dead.
    if current {
        core.sched.disconnect_worker(&wk);
    }
}

/// Removes the worker, unless it already re-registered on a newer
/// connection; returns its requeued tasks.
fn forget(shared: &Shared, conn: &Connection, wk: WorkerKey, ended: &str) -> Vec<Change> {
    let now = shared.now();
    let mut core = shared.core();
    let current = core
        .conns
        .get(&wk)
        .is_some_and(|c| c.conn.stable_id() == conn.stable_id());
    if !current {
        return Vec::new();
    }
    core.forget_conn(
        &wk,
        fabric_proto::wire::WorkerState::Down,
        format!("left: {ended}"),
        now,
    );
    core.sched.remove_worker(&wk, now)
}
