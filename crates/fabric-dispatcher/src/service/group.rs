//! A dispatcher in a group of dispatchers (issue 26): it serves clients
//! and workers only while it leads.
//!
//! Every member keeps the replicated state in its store (the Raft state
//! machine applies each committed entry). The leader alone runs the
//! scheduler: when a member becomes leader it waits until it has applied
//! everything committed (its term's first entry), then recovers the queue
//! from its store exactly as a restarted single dispatcher does, and
//! serves. When it stops leading it closes its workers' connections (they
//! go to the new leader), ends the waits of its clients, forgets its
//! queue, and answers every request with the leader's address
//! ([`ErrorCode::NotLeader`](fabric_proto::wire::ErrorCode::NotLeader)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fabric_proto::wire::{ErrorBody, LeaderHint};
use fabric_raft::{Member, RaftNode};
use openraft::ServerState;

use super::state::Shared;

mod blobs;
mod members;
use crate::scheduler::Scheduler;
pub(crate) use blobs::keep_loop;
pub(crate) use members::{add_member, members, remove_member};

/// How the message of everything a member ends when it stops leading
/// begins.
pub(crate) const STOPPED_LEADING: &str = "this dispatcher stopped leading";

/// Close code for a worker's connection when its dispatcher stops leading.
pub(crate) const NOT_LEADER: u32 = 5;

/// This member's part in its group.
pub(crate) struct Group {
    node: RaftNode,
    /// Serving: leading, and recovered.
    leading: AtomicBool,
    /// The term it took over in.
    term: std::sync::atomic::AtomicU64,
}

impl Group {
    pub(crate) fn new(node: RaftNode) -> Self {
        Self {
            node,
            leading: AtomicBool::new(false),
            term: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The Raft node.
    pub(crate) fn node(&self) -> &RaftNode {
        &self.node
    }

    /// Whether this member serves now.
    pub(crate) fn leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    /// What a follower answers: where the leader is.
    pub(crate) fn not_leader(&self) -> ErrorBody {
        // A leader cut off from the majority names nobody (not itself).
        let leader = self.node.leader().filter(|m| m.key != self.node.me().key);
        ErrorBody::not_leader(leader.map(|m| hint(&m)))
    }
}

/// Starts this member's Raft node on `endpoint`. The member with the
/// smallest key forms the group: alone first (so a store with data from
/// before the group is the one the others copy), then it adds the others
/// (see [`form`]). The others wait to be added.
pub(crate) async fn join(
    cluster: &super::ClusterConfig,
    identity: &fabric_net::Identity,
    endpoint: &quinn::Endpoint,
    bound: std::net::SocketAddr,
    net: &fabric_net::NetConfig,
    store: &fabric_store::Store,
) -> Result<RaftNode, super::DispatcherError> {
    let me = Member {
        addr: cluster
            .advertise
            .clone()
            .unwrap_or_else(|| bound.to_string()),
        key: identity.public().to_bytes(),
        api_url: cluster.api_url.clone(),
    };
    if cluster.peers.iter().any(|p| p.key == me.key) {
        return Err(super::DispatcherError::Group(
            "--peer lists this dispatcher's own key; list only the other members".into(),
        ));
    }
    let transport = fabric_raft::Transport {
        endpoint: endpoint.clone(),
        identity: Arc::new(identity.clone()),
        net: net.clone(),
    };
    let mut members = cluster.peers.clone();
    members.push(me.clone());
    let node = RaftNode::start(
        store.clone(),
        transport,
        me.clone(),
        &members,
        &cluster.raft,
    )
    .await
    .map_err(|e| super::DispatcherError::Group(e.to_string()))?;
    if !cluster.joining && members.iter().map(|m| m.key).min() == Some(me.key) {
        let has_data = store.counts().map(|c| c.tasks > 0).unwrap_or(true)
            || !store
                .peers(fabric_store::PeerRole::Worker)
                .unwrap_or_default()
                .is_empty();
        if has_data {
            // Data from before the group: this member forms it alone and
            // the others copy its state (`form`).
            node.initialize(std::slice::from_ref(&me))
                .await
                .map_err(|e| super::DispatcherError::Group(e.to_string()))?;
            tokio::spawn(form(node.clone(), cluster.peers.clone()));
        } else {
            // A new group (or this member's data dir was lost): with every
            // member at once, so no member alone is ever a majority.
            node.initialize(&members)
                .await
                .map_err(|e| super::DispatcherError::Group(e.to_string()))?;
        }
    }
    tracing::info!(
        me = %me.addr,
        peers = cluster.peers.len(),
        "member of a group of dispatchers; waiting for a leader"
    );
    Ok(node)
}

/// The forming member adds the others once it leads: as learners (they
/// copy the log, or a snapshot of the state when the log does not go back
/// far enough), then as voters in one joint change. Does nothing for
/// members already in the group (a restart), and gives up once it is not
/// the leader (another leader formed the group already).
async fn form(node: RaftNode, peers: Vec<Member>) {
    let missing = |node: &RaftNode| {
        let status = node.status();
        peers
            .iter()
            .filter(|p| {
                !status
                    .members
                    .iter()
                    .any(|(_, m, voter)| m.key == p.key && *voter)
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let Some(_) = node.wait_for_leader(Duration::from_secs(30)).await else {
        return;
    };
    if missing(&node).is_empty() || !node.is_leader() {
        return;
    }
    // Data from before the group (a dispatcher that ran alone) is in the
    // store but not in the log: the log is cut behind a snapshot, so the
    // others start from the snapshot.
    node.compact().await;
    for attempt in 0..600u32 {
        if !node.is_leader() {
            return;
        }
        match add_all(&node, &missing(&node)).await {
            Ok(()) => {
                tracing::info!(
                    members = peers.len() + 1,
                    "the group of dispatchers is formed"
                );
                return;
            }
            Err(e) if attempt % 20 == 0 => {
                tracing::info!(error = %e, "adding the other dispatchers; trying again")
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn add_all(node: &RaftNode, missing: &[Member]) -> Result<(), String> {
    if missing.is_empty() {
        return Ok(());
    }
    for m in missing {
        node.raft()
            .add_learner(fabric_raft::member_id(&m.key), m.clone(), true)
            .await
            .map_err(|e| e.to_string())?;
    }
    let status = node.status();
    let mut voters: std::collections::BTreeSet<u64> = status
        .members
        .iter()
        .filter(|(_, _, voter)| *voter)
        .map(|(id, _, _)| *id)
        .collect();
    voters.extend(missing.iter().map(|m| fabric_raft::member_id(&m.key)));
    node.raft()
        .change_membership(voters, false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// A member as a client follows it.
pub(crate) fn hint(m: &Member) -> LeaderHint {
    LeaderHint {
        addr: m.addr.clone(),
        key: m.key,
        api_url: m.api_url.clone(),
    }
}

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
    match tokio::task::spawn_blocking(move || super::requests::after::refill_missing(&store)).await
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
                blobs::fetch_missing(&shared.store, group).await;
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), fetching).await;
    }
    let (sched, deps) = super::recover(&shared.cfg, &shared.store, &shared.ledger, true)
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
        core.deps = super::deps::Deps::default();
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

/// Serves another member's proposal (its setup writes): committed here if
/// this member leads, its events numbered here (a follower's numbers could
/// be ones this leader gives out). The answer is `Result<Applied, String>`
/// in CBOR.
pub(crate) async fn propose(shared: &Shared, group: &Group, body: &[u8]) -> Vec<u8> {
    let answer: Result<fabric_store::Applied, String> = async {
        if !group.leading() {
            return Err("this dispatcher does not lead its group".to_owned());
        }
        let mut cmd: fabric_store::Command =
            fabric_proto::from_cbor(body).map_err(|e| format!("malformed proposal: {e}"))?;
        renumber(&shared.store, &mut cmd).map_err(|e| e.to_string())?;
        group.node.write(cmd).await.map_err(|e| e.to_string())
    }
    .await;
    fabric_proto::to_cbor(&answer).unwrap_or_default()
}

fn renumber(
    store: &fabric_store::Store,
    cmd: &mut fabric_store::Command,
) -> Result<(), fabric_store::StoreError> {
    match cmd {
        fabric_store::Command::Events(evs) => {
            for (seq, _) in evs {
                *seq = store.next_seq()?;
            }
        }
        fabric_store::Command::Many(cmds) => {
            for c in cmds {
                renumber(store, c)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The most inline input, args and env a task carries in its record in a
/// group (more input is uploaded as a blob, which replicates piece by
/// piece; a single dispatcher moves large args and env to a blob itself).
pub(crate) const GROUP_INLINE_MAX: usize = 1 << 20;

/// Whether a task's inline data can travel in its record (the Raft log).
pub(crate) fn check_replicable(
    spec: &fabric_proto::TaskSpec,
) -> Result<(), super::requests::RequestError> {
    let refused = |why: String| {
        super::requests::RequestError::Refused(ErrorBody::new(
            fabric_proto::wire::ErrorCode::BadRequest,
            why,
        ))
    };
    let bytes = spec.input.len() + spec.args_env_bytes();
    if bytes > GROUP_INLINE_MAX {
        return Err(refused(format!(
            "the task carries {bytes} bytes of inline input, args and env; a group of dispatchers takes at most {GROUP_INLINE_MAX} in a task's record: upload a large input as a blob (`fabric submit --input FILE` does)"
        )));
    }
    Ok(())
}
