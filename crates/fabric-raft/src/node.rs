//! One dispatcher's Raft node: openraft on the store, its RPCs on QUIC.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fabric_store::{Applied, Command, Store};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{Raft, ServerState, SnapshotPolicy};

use crate::network::{QuicNetwork, Transport};
use crate::{Fabric, LogStore, Member, StateMachine, StorageError, member_id};

/// How the group keeps time and compacts its log.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// How often the leader sends heartbeats.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range
    /// stands for election.
    pub election_timeout: (Duration, Duration),
    /// Entries between snapshots.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the latest snapshot (for members a
    /// little behind).
    pub keep_behind_snapshot: u64,
    /// Blob pieces applied past this many bytes: snapshot and cut the log
    /// behind it, so the log (sled values, which sled 0.34 keeps in memory
    /// beyond its cache) holds about this much of them at most.
    pub compact_after_bytes: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(160),
            election_timeout: (Duration::from_millis(800), Duration::from_millis(1_600)),
            snapshot_every: 5_000,
            keep_behind_snapshot: 1_000,
            compact_after_bytes: 256 << 20,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The settings are not valid.
    #[error("invalid Raft settings: {0}")]
    Config(#[from] openraft::ConfigError),
    /// The store could not be read.
    #[error("cannot read the Raft state from the store: {0}")]
    Storage(#[from] StorageError),
    /// openraft stopped.
    #[error("the Raft node stopped: {0}")]
    Fatal(#[from] openraft::error::Fatal<u64>),
}

/// Why a write was not committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// This node is not the leader; the leader, if one is known.
    #[error("this dispatcher is not the leader{}", leader_hint(.0))]
    NotLeader(Option<Member>),
    /// The node is shutting down or failed.
    #[error("the Raft node failed: {0}")]
    Failed(String),
}

fn leader_hint(m: &Option<Member>) -> String {
    match m {
        Some(m) => format!(" (the leader is {})", m.addr),
        None => " (no leader is known yet)".into(),
    }
}

/// Where this node stands, for `fabric workers`, `/health` and the
/// dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// This node.
    pub id: u64,
    /// Leader, follower, candidate or learner.
    pub role: &'static str,
    /// The term.
    pub term: u64,
    /// The last index in its log.
    pub last_log: Option<u64>,
    /// The last index applied.
    pub applied: Option<u64>,
    /// The last index its latest snapshot holds.
    pub snapshot: Option<u64>,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The voters and learners, by id.
    pub members: Vec<(u64, Member, bool)>,
    /// On the leader: the last index each member is known to hold.
    pub replication: Vec<(u64, Option<u64>)>,
}

/// A running Raft node.
#[derive(Clone)]
pub struct RaftNode {
    raft: Raft<Fabric>,
    me: Member,
    id: u64,
    /// The keys of the members this node was started with (`--peer`), so
    /// their first RPCs are served before the membership is committed.
    seed_keys: Arc<Vec<[u8; 32]>>,
    /// For proposals forwarded to the leader.
    transport: Transport,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl RaftNode {
    /// Starts this node on `store`, its RPCs going out of `transport`.
    /// `seeds` are the members it was told of (itself included).
    pub async fn start(
        store: Store,
        transport: Transport,
        me: Member,
        seeds: &[Member],
        cfg: &RaftConfig,
    ) -> Result<Self, StartError> {
        let config = openraft::Config {
            cluster_name: "fabric".into(),
            heartbeat_interval: cfg.heartbeat.as_millis() as u64,
            election_timeout_min: cfg.election_timeout.0.as_millis() as u64,
            election_timeout_max: cfg.election_timeout.1.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
            max_in_snapshot_log_to_keep: cfg.keep_behind_snapshot,
            // A snapshot is the whole state: it must have time to travel
            // (the default, 200 ms, is one heartbeat).
            install_snapshot_timeout: 30_000,
            ..Default::default()
        }
        .validate()?;
        let id = member_id(&me.key);
        let sm = StateMachine::open(store.clone()).await?;
        let bulk = sm.bulk();
        let raft = Raft::new(
            id,
            Arc::new(config),
            QuicNetwork::new(transport.clone()),
            LogStore::new(store),
            sm,
        )
        .await?;
        let node = Self {
            raft,
            me,
            id,
            seed_keys: Arc::new(seeds.iter().map(|m| m.key).collect()),
            transport,
        };
        tokio::spawn(node.clone().watch_bulk(bulk, cfg.compact_after_bytes));
        Ok(node)
    }

    /// openraft's handle (for the RPC server and membership changes).
    pub fn raft(&self) -> &Raft<Fabric> {
        &self.raft
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// This member.
    pub fn me(&self) -> &Member {
        &self.me
    }

    /// Makes a new group of `members` (this node among them) if this node
    /// has never been part of one; otherwise does nothing. Several members
    /// calling it with the same set is safe.
    pub async fn initialize(&self, members: &[Member]) -> Result<(), WriteError> {
        let nodes: BTreeMap<u64, Member> = members
            .iter()
            .map(|m| (member_id(&m.key), m.clone()))
            .collect();
        match self.raft.initialize(nodes).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(WriteError::Failed(e.to_string())),
        }
    }

    /// Commits `cmd` on a majority and applies it here; answers what
    /// applying it said.
    pub async fn write(&self, cmd: Command) -> Result<Applied, WriteError> {
        match self.raft.client_write(cmd).await {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(WriteError::NotLeader(f.leader_node))
            }
            Err(e) => Err(WriteError::Failed(e.to_string())),
        }
    }

    /// [`RaftNode::write`], sent to the leader when this node does not
    /// lead (the leader applies it as if it had made it). Tried here for 3 s
    /// at most: a node restarted as the leader of a term the others left
    /// takes the write into its own log, where openraft answers it only
    /// once the entry is committed or overwritten.
    pub async fn write_forwarded(&self, cmd: Command) -> Result<Applied, WriteError> {
        let here = tokio::time::timeout(Duration::from_secs(3), self.write(cmd.clone()))
            .await
            .unwrap_or_else(|_| {
                Err(WriteError::Failed(
                    "this dispatcher believes it leads but did not commit within 3 s".into(),
                ))
            });
        match here {
            Err(WriteError::NotLeader(Some(leader))) if leader.key != self.me.key => {
                crate::network::PeerClient::new(self.transport.clone(), leader)
                    .propose(&cmd, Duration::from_secs(10))
                    .await
                    .map_err(WriteError::Failed)
            }
            other => other,
        }
    }

    /// A client for requests to `member` from this node's endpoint (blob
    /// fetches).
    pub fn peer(&self, member: Member) -> crate::network::PeerClient {
        crate::network::PeerClient::new(self.transport.clone(), member)
    }

    /// Takes a snapshot now and cuts the log behind it (every entry, not
    /// the usual ones kept behind: a member that needs them gets the
    /// snapshot). Waits at most 30 s for the snapshot.
    pub async fn compact(&self) {
        let applied = self.status().applied;
        if self.raft.trigger().snapshot().await.is_err() {
            return;
        }
        for _ in 0..300 {
            if self.status().snapshot >= applied {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(i) = self.status().snapshot {
            let _ = self.raft.trigger().purge_log(i).await;
        }
    }

    /// Compacts the log each time blob pieces applied since the last time
    /// pass `limit` bytes (checked each second, until the node stops).
    async fn watch_bulk(self, bulk: Arc<std::sync::atomic::AtomicU64>, limit: u64) {
        use std::sync::atomic::Ordering;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if self.raft.metrics().borrow().state == ServerState::Shutdown {
                return;
            }
            if bulk.load(Ordering::Acquire) >= limit {
                bulk.store(0, Ordering::Release);
                self.compact().await;
            }
        }
    }

    /// Whether `key` belongs to a member (or a seed): only members may
    /// send Raft RPCs.
    pub fn is_member(&self, key: &[u8; 32]) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.membership_config.nodes().next().is_none() {
            // Not in a group yet: the members it was told of may reach it.
            return self.seed_keys.contains(key);
        }
        m.membership_config.nodes().any(|(_, n)| &n.key == key)
    }

    /// Whether `key` belongs to a voter of the group now.
    pub fn is_voter(&self, key: &[u8; 32]) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        m.membership_config
            .nodes()
            .any(|(id, n)| &n.key == key && voters.contains(id))
    }

    /// The leader, if this node knows one.
    pub fn leader(&self) -> Option<Member> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        m.membership_config
            .nodes()
            .find(|(i, _)| **i == id)
            .map(|(_, n)| n.clone())
    }

    /// Whether this node is the leader now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().state == ServerState::Leader
    }

    /// Where this node stands.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft.metrics();
        let m = m.borrow();
        let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        NodeStatus {
            id: self.id,
            role: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "stopped",
            },
            term: m.current_term,
            last_log: m.last_log_index,
            applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            leader: m.current_leader,
            members: m
                .membership_config
                .nodes()
                .map(|(i, n)| (*i, n.clone(), voters.contains(i)))
                .collect(),
            replication: m
                .replication
                .iter()
                .flatten()
                .map(|(id, l)| (*id, l.map(|l| l.index)))
                .collect(),
        }
    }

    /// Waits until this node knows a leader (at most `timeout`).
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<u64> {
        let mut rx = self.raft.metrics();
        tokio::time::timeout(timeout, async {
            loop {
                if let Some(l) = rx.borrow().current_leader {
                    return l;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await
        .ok()
    }

    /// Stops the node.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "the Raft node did not stop cleanly");
        }
    }
}
