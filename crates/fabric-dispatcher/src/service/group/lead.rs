//! Leading: following this member's Raft state, taking over when it
//! becomes leader (a quorum write of its term, everything committed
//! applied, the queue recovered from the store) and letting go when it
//! stops (another leads, no majority acknowledged it, a new term began, a
//! write of its term was not committed in time).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openraft::ServerState;

use super::{Group, NOT_LEADER, STOPPED_LEADING};
use crate::scheduler::Scheduler;
use crate::service::state::Shared;

/// Follows this member's Raft state: takes over when it becomes leader,
/// lets go when it stops.
pub(crate) async fn lead_loop(shared: Arc<Shared>) {
    let Some(group) = shared.group.as_ref() else {
        return;
    };
    let mut metrics = group.node.raft().metrics();
    let cut_off = shared
        .cfg
        .cluster
        .as_ref()
        .map_or(Duration::from_secs(2), |c| c.raft.election_timeout.1);
    loop {
        let (leader, term, acked) = {
            let m = metrics.borrow();
            let acked = m.millis_since_quorum_ack.map(Duration::from_millis);
            (m.state == ServerState::Leader, m.current_term, acked)
        };
        // A leader cut off from the majority stops serving: it could
        // commit nothing, and the others elect another. Its heartbeats and
        // appends unanswered by a majority for the election timeout say so
        // (openraft's own clock of acknowledgements; nothing is written to
        // the log for it: a no-op write per check queued behind large
        // entries, a blob's pieces, and took a busy leader's place).
        if leader && group.leading() && acked.is_none_or(|a| a > cut_off) {
            step_down(
                &shared,
                group,
                "no majority of the group acknowledged it within the election timeout",
            );
        }
        // A write of this term was not committed in time (its proposer
        // gave up, and every later write with it): begin again.
        if leader && group.leading() && shared.ledger.term_failed() {
            step_down(&shared, group, "a write was not committed in time");
        }
        // Another term since this member took over: it may have missed
        // what a leader in between did; it takes over again.
        if leader && group.leading() && group.term.load(Ordering::Acquire) != term {
            step_down(&shared, group, "a new term began");
        }
        if leader && !group.leading() {
            if let Err(e) = take_over(&shared, group).await {
                tracing::warn!(error = %e, "could not take over as leader; standing by");
                step_down(&shared, group, "it could not take over");
            }
        } else if !leader && group.leading() {
            step_down(&shared, group, "another dispatcher leads now");
        }
        // Woken by a change of state, or once a second regardless; openraft
        // sends its metrics on every turn of its loop, so at most every
        // 20 ms.
        let _ = tokio::time::timeout(Duration::from_secs(1), metrics.changed()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a majority commits a no-op write within `within` (what proves
/// this member leads: openraft's own view can lag, a member restarted
/// from its vote believes it leads a term the others have left).
async fn quorum(group: &Group, within: Duration) -> bool {
    matches!(
        tokio::time::timeout(
            within,
            group.node.write(fabric_store::Command::Many(Vec::new()))
        )
        .await,
        Ok(Ok(_))
    )
}

async fn take_over(shared: &Arc<Shared>, group: &Group) -> Result<(), String> {
    let started = std::time::Instant::now();
    let term = group.node.raft().metrics().borrow().current_term;
    // A majority must commit in this term first: a member restarted as
    // the leader of a term the others left behind must not serve.
    let cut_off = shared
        .cfg
        .cluster
        .as_ref()
        .map_or(Duration::from_secs(2), |c| c.raft.election_timeout.1);
    if !quorum(group, cut_off).await {
        return Err("no majority committed its first entry in time".into());
    }
    // Until this member has applied everything committed before its term.
    group
        .node
        .raft()
        .ensure_linearizable()
        .await
        .map_err(|e| e.to_string())?;
    shared.ledger.begin_term();
    // Inputs the former leader made from parents' outputs (blob files,
    // not in the log) are made again here from the replicated results.
    let store = shared.store.clone();
    match tokio::task::spawn_blocking(move || {
        crate::service::requests::after::refill_missing(&store)
    })
    .await
    {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(
            tasks = n,
            "stored again the inputs the former leader made from parents' outputs"
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot look for inputs made from parents' outputs")
        }
        Err(e) => {
            tracing::warn!(error = %e, "looking for inputs made from parents' outputs failed")
        }
    }
    // Uploaded blobs it still lacks (it caught up by a snapshot, and the
    // fetch after it did not finish): from the others, for 10 s at most
    // before it serves (the rest go on in the background).
    {
        let shared = shared.clone();
        let fetching = tokio::spawn(async move {
            if let Some(group) = shared.group.as_ref() {
                super::blobs::fetch_missing(&shared.store, group).await;
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), fetching).await;
    }
    let (sched, deps) = crate::service::recover(&shared.cfg, &shared.store, &shared.ledger, true)
        .await
        .map_err(|e| e.to_string())?;
    {
        let mut core = shared.core();
        core.sched = sched;
        core.deps = deps;
    }
    shared
        .schedules_due
        .store(0, std::sync::atomic::Ordering::Release);
    group.term.store(term, Ordering::Release);
    group.leading.store(true, Ordering::Release);
    shared.place.notify_one();
    let status = group.node.status();
    tracing::info!(
        term = status.term,
        applied = ?status.applied,
        took_ms = started.elapsed().as_millis() as u64,
        "leading the group of dispatchers"
    );
    Ok(())
}

fn step_down(shared: &Shared, group: &Group, why: &str) {
    let was = group.leading.swap(false, Ordering::AcqRel);
    let leader = group.node.leader();
    let message = match &leader {
        Some(m) => format!("{STOPPED_LEADING} ({why}); the leader is {}", m.addr),
        None => format!("{STOPPED_LEADING} ({why}); ask again shortly"),
    };
    shared.ledger.end_term(&message);
    let conns = {
        let mut core = shared.core();
        core.sched = Scheduler::new(shared.cfg.sched.clone());
        core.deps = crate::service::deps::Deps::default();
        std::mem::take(&mut core.conns)
    };
    for (_, c) in conns {
        c.conn.close(NOT_LEADER.into(), message.as_bytes());
    }
    shared.waiters.fail_all(&message);
    if was {
        tracing::info!(%why, leader = ?leader.map(|m| m.addr), "no longer leading the group of dispatchers");
    }
}
