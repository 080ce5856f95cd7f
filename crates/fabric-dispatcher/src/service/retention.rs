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
        // In a group, each member's sweep would remove entries the others
        // keep: not done yet (issue 26's notes).
        if shared.group.is_some() {
            continue;
        }
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

/// The blobs unfinished tasks and schedules need: modules, large inputs,
/// staged files, large args, and what every schedule's task or job names.
fn referenced_blobs(shared: &Shared) -> HashSet<Sha256> {
    let mut used = HashSet::new();
    let spec_blobs =
        |used: &mut HashSet<Sha256>, kind: &TaskKind, input: Option<&fabric_proto::BlobRef>| {
            match kind {
                TaskKind::Wasm { module } => {
                    used.insert(*module);
                }
                TaskKind::Command { files, .. } => used.extend(files.iter().map(|f| f.blob.sha)),
            }
            if let Some(input) = input {
                used.insert(input.sha);
            }
        };
    {
        let core = shared.core();
        for r in core.sched.live_records() {
            spec_blobs(&mut used, &r.spec.kind, r.spec.input_blob.as_ref());
            if let Some(args) = &r.args_blob {
                used.insert(args.sha);
            }
        }
        used.extend(core.sched.cold_blobs().copied());
    }
    // A schedule runs again later: its blobs stay while it exists.
    for s in shared.store.schedules().unwrap_or_default() {
        if let Some(t) = &s.spec.task {
            spec_blobs(&mut used, &t.kind, t.input_blob.as_ref());
        }
        for step in s.spec.job.iter().flat_map(|j| &j.steps) {
            spec_blobs(&mut used, &step.kind, step.input.as_ref());
            used.extend(step.each.iter().map(|i| i.blob.sha));
        }
    }
    used
}
