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

use super::state::Shared;
pub(crate) use lead::lead_loop;

mod blobs;
mod lead;
mod members;
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
