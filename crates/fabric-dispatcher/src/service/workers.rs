//! Removing a worker: its key forgotten, its connection closed, its leases
//! requeued.

use fabric_proto::WorkerKey;
use fabric_proto::wire::WorkerState;
use fabric_store::{EventKind, PeerRole, StoreError};

use super::state::Shared;

/// What removing a worker did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Removed {
    /// It had a live connection (now closed).
    pub connected: bool,
    /// Tasks it held that went back to the queue.
    pub requeued: u32,
}

/// Forgets `key` as a worker, closes its connection and requeues its
/// leases (written and flushed before returning). It must join again with a
/// valid token to come back.
pub(crate) async fn remove_worker(shared: &Shared, key: WorkerKey) -> Result<Removed, StoreError> {
    shared
        .ledger
        .remove_peer(PeerRole::Worker, key.as_bytes())?;
    let now = shared.now();
    let (conn, changes) = {
        let mut core = shared.core();
        let why = "removed by an admin (fabric workers remove)".to_owned();
        let conn = core.forget_conn(&key, WorkerState::Removed, why, now);
        (conn, core.sched.remove_worker(&key, now))
    };
    let connected = conn
        .as_ref()
        .is_some_and(|c| c.conn.close_reason().is_none());
    if let Some(c) = conn {
        c.conn.close(2u32.into(), b"removed by the operator");
    }
    let requeued = u32::try_from(changes.len()).unwrap_or(u32::MAX);
    tracing::info!(worker = %key.short(), connected, requeued, "worker removed");
    shared.event(
        None,
        EventKind::WorkerRemoved,
        format!("{key}: removed by the operator"),
    );
    shared.settle(changes).await?;
    Ok(Removed {
        connected,
        requeued,
    })
}

/// The worker keys (trusted or connected) whose hex starts with `prefix`.
pub(crate) fn matching(shared: &Shared, prefix: &str) -> Result<Vec<WorkerKey>, StoreError> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys: Vec<WorkerKey> = shared
        .store
        .peers(PeerRole::Worker)?
        .into_iter()
        .map(|(k, _)| WorkerKey(k))
        .collect();
    keys.extend(shared.core().conns.keys().copied());
    keys.sort();
    keys.dedup();
    keys.retain(|k| k.to_string().starts_with(&prefix));
    Ok(keys)
}
