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
use crate::scheduler::Change;

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
    register(shared, conn, wk, &info);
    tracing::info!(name = %info.name, slots = info.slots, "worker registered");
    send.send(&Response::Registered {
        heartbeat_ms: shared.cfg.sched.heartbeat_ms,
    })
    .await?;
    shared.place.notify_one();
    let ended = loop {
        match recv.recv::<WorkerMsg>().await {
            Ok(Some(WorkerMsg::Heartbeat { .. })) => heartbeat(shared, wk, &info),
            Ok(Some(WorkerMsg::Draining)) => {
                tracing::info!("worker is draining");
                shared.core().sched.drain_worker(&wk);
            }
            Ok(None) => break "closed its control stream".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    let changes = forget(shared, conn, wk);
    tracing::info!(reason = %ended, requeued = changes.len(), "worker gone");
    shared.event(None, EventKind::WorkerGone, format!("{wk}: {ended}"));
    shared.settle(changes).await?;
    Ok(())
}

fn register(shared: &Shared, conn: &Connection, wk: WorkerKey, info: &WorkerInfo) {
    let now = shared.now();
    let mut core = shared.core();
    core.sched.add_worker(wk, info, now);
    core.conns.insert(
        wk,
        WorkerConn {
            conn: conn.clone(),
            info: info.clone(),
        },
    );
}

fn heartbeat(shared: &Shared, wk: WorkerKey, info: &WorkerInfo) {
    let now = shared.now();
    let mut core = shared.core();
    if !core.sched.heartbeat(&wk, now) {
        // Declared dead meanwhile; it is back.
        tracing::info!("worker came back; re-registering");
        core.sched.add_worker(wk, info, now);
        drop(core);
        shared.place.notify_one();
    }
}

/// Removes the worker, unless it already re-registered on a newer
/// connection; returns its requeued tasks.
fn forget(shared: &Shared, conn: &Connection, wk: WorkerKey) -> Vec<Change> {
    let now = shared.now();
    let mut core = shared.core();
    let current = core
        .conns
        .get(&wk)
        .is_some_and(|c| c.conn.stable_id() == conn.stable_id());
    if !current {
        return Vec::new();
    }
    core.conns.remove(&wk);
    core.sched.remove_worker(&wk, now)
}
