//! The retention sweep: every [`RetentionConfig::interval`], one bounded
//! pass over the store's event log, finished tasks and blobs
//! ([`Store::sweep`](fabric_store::Store::sweep)), with ages measured on the
//! dispatcher's clock.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fabric_proto::{Sha256, TaskKind};
use fabric_store::{RetentionPolicy, StoreError, SweepCursor, Swept};

use super::state::Shared;

/// How often and how much the dispatcher forgets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Time between passes (real time).
    pub interval: Duration,
    /// What each pass removes.
    pub policy: RetentionPolicy,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            policy: RetentionPolicy::default(),
        }
    }
}

/// Runs a pass every interval, for as long as the dispatcher lives.
pub(crate) async fn retention_loop(shared: Arc<Shared>) {
    let mut cursor = SweepCursor::default();
    loop {
        tokio::time::sleep(shared.cfg.retention.interval).await;
        if let Err(e) = sweep(&shared, &mut cursor) {
            tracing::error!(error = %e, "retention sweep failed");
        }
    }
}

/// One pass: blobs that live tasks use are kept.
pub(crate) fn sweep(shared: &Shared, cursor: &mut SweepCursor) -> Result<Swept, StoreError> {
    let referenced = referenced_blobs(shared);
    let swept = shared.store.sweep(
        &shared.cfg.retention.policy,
        shared.now(),
        &referenced,
        cursor,
    )?;
    if swept != Swept::default() {
        tracing::info!(
            events = swept.events,
            tasks = swept.tasks,
            blobs = swept.blobs,
            uploads = swept.uploads,
            "retention removed old entries"
        );
    }
    Ok(swept)
}

/// The blobs unfinished tasks need: their modules, large inputs, staged
/// files and large args.
fn referenced_blobs(shared: &Shared) -> HashSet<Sha256> {
    let core = shared.core();
    let mut used = HashSet::new();
    for r in core.sched.live_records() {
        match &r.spec.kind {
            TaskKind::Wasm { module } => {
                used.insert(*module);
            }
            TaskKind::Command { files, .. } => used.extend(files.iter().map(|f| f.blob.sha)),
        }
        if let Some(input) = &r.spec.input_blob {
            used.insert(input.sha);
        }
        if let Some(args) = &r.args_blob {
            used.insert(args.sha);
        }
    }
    used
}
