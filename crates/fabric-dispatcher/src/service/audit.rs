//! The audit trail: who did an admin action. A request is served inside
//! [`acting`], which names its caller (a client key, or a REST token);
//! every event recorded while it is served carries that name, and the
//! admin kinds of those events are the trail (`fabric admin audit`).

use fabric_proto::wire::{AuditEntry, Response};
use fabric_store::EventKind;

use super::requests::Answer;
use super::state::Shared;

tokio::task_local! {
    static ACTOR: String;
}

/// Runs `f` (the serving of one request) as done by `actor`.
pub async fn acting<F: Future>(actor: String, f: F) -> F::Output {
    ACTOR.scope(actor, f).await
}

/// Who the request being served came from, if one is.
pub(crate) fn actor() -> Option<String> {
    ACTOR.try_with(Clone::clone).ok()
}

/// The kinds of event an admin (or a submitter cancelling) causes.
const AUDITED: &[EventKind] = &[
    EventKind::TokenCreated,
    EventKind::TokenRevoked,
    EventKind::WorkerRemoved,
    EventKind::Retry,
    EventKind::Cancelled,
    EventKind::KeyRotated,
    EventKind::MembersChanged,
    EventKind::Backup,
];

/// How many of the newest events an audit query looks through.
const AUDIT_SCAN: usize = 100_000;

/// The newest `limit` audited actions, newest first.
pub(crate) fn list(shared: &Shared, limit: u32) -> Answer {
    let events = shared.store.recent_events(AUDIT_SCAN)?;
    let entries = events
        .into_iter()
        .rev()
        .filter(|e| AUDITED.contains(&e.kind))
        .filter_map(|e| {
            Some(AuditEntry {
                at_ms: e.at_ms,
                actor: e.actor?,
                action: e.kind.as_str().to_owned(),
                task: e.task,
                detail: e.detail,
            })
        })
        .take(limit.clamp(1, 10_000) as usize)
        .collect();
    Ok(Response::Audit(entries))
}
