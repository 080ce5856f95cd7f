//! How a dispatcher runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fabric_net::NetConfig;
use fabric_net::mdns::Interfaces;
use fabric_proto::{SharedClock, SystemClock};

use super::caps::WorkerCaps;
use super::retention::RetentionConfig;
use crate::admission::AdmissionCaps;
use crate::scheduler::SchedConfig;

/// Default lifetime of a join token (DESIGN.md, "Trust").
pub const DEFAULT_JOIN_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// How a dispatcher runs.
#[derive(Clone, Debug)]
pub struct DispatcherConfig {
    /// Where the key, the store and the join token live.
    pub data_dir: PathBuf,
    /// QUIC listen address.
    pub listen: SocketAddr,
    /// Scheduling knobs.
    pub sched: SchedConfig,
    /// Admission caps.
    pub caps: AdmissionCaps,
    /// How long a signed manifest stays valid.
    pub manifest_ttl: Duration,
    /// Transport settings.
    pub net: NetConfig,
    /// Announce on mDNS on these interfaces (`None`: do not announce).
    pub mdns: Option<Interfaces>,
    /// How long a store flush waits for more writers to share it.
    pub commit_linger: Duration,
    /// Where "now" comes from: the system clock, or a manual one in tests.
    pub clock: SharedClock,
    /// How long a join token minted without `--ttl` is accepted.
    pub join_token_ttl: Duration,
    /// The most slots and memory a worker may claim.
    pub worker_caps: WorkerCaps,
    /// How long events, finished tasks and blobs are kept.
    pub retention: RetentionConfig,
    /// Connections and streams each kind of peer may hold open.
    pub peers: PeerLimits,
    /// The operator's key, which wraps the store's data keys (`None`: a
    /// key kept beside the data wraps them).
    pub operator_key: Option<fabric_store::OperatorKey>,
    /// The group of dispatchers this one belongs to (`None`: it is alone,
    /// as before issue 26).
    pub cluster: Option<ClusterConfig>,
}

/// Connections and streams each kind of peer may hold open. A key without a
/// role (one that may only join) gets the transport's small default
/// (`NetConfig::unknown_peer_streams`).
#[derive(Clone, Debug)]
pub struct PeerLimits {
    /// Concurrent streams of a client connection.
    pub client_streams: u32,
    /// Concurrent streams of a worker connection (control, fetches, late
    /// reports; assignments are streams the dispatcher opens).
    pub worker_streams: u32,
    /// Connections one known key may hold at once.
    pub connections_per_key: u32,
    /// Connections of keys without a role, in all.
    pub unknown_connections: u32,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            client_streams: 1024,
            worker_streams: 256,
            connections_per_key: 16,
            unknown_connections: 64,
        }
    }
}

/// A group of dispatchers on Raft (issue 26).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// The other members (address and key; the REST URL if known).
    pub peers: Vec<fabric_raft::Member>,
    /// The address the others reach this one at (default: the listen
    /// address).
    pub advertise: Option<String>,
    /// This member's REST URL, if it serves the REST API.
    pub api_url: Option<String>,
    /// It joins a group that exists (added with `fabric admin members
    /// add`): it never forms one.
    pub joining: bool,
    /// Election and compaction settings.
    pub raft: fabric_raft::RaftConfig,
}

impl DispatcherConfig {
    /// Defaults for a data dir and listen address.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            data_dir,
            listen,
            sched: SchedConfig::default(),
            caps: AdmissionCaps::default(),
            manifest_ttl: Duration::from_secs(60),
            net: NetConfig::default(),
            mdns: None,
            commit_linger: Duration::ZERO,
            clock: SystemClock::shared(),
            peers: PeerLimits::default(),
            join_token_ttl: DEFAULT_JOIN_TOKEN_TTL,
            worker_caps: WorkerCaps::default(),
            retention: RetentionConfig::default(),
            operator_key: None,
            cluster: None,
        }
    }
}
