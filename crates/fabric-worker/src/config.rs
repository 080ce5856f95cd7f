//! How a worker runs, and how it stops.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use fabric_net::mdns::Interfaces;
use fabric_net::{EndpointError, MdnsError, NetConfig, PublicKey, StreamError};
use fabric_proto::{SharedClock, SystemClock};

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Key and module cache live here.
    pub data_dir: PathBuf,
    /// Dispatcher address; `None` finds it by mDNS.
    pub dispatcher: Option<SocketAddr>,
    /// The dispatcher's key, pinned.
    pub dispatcher_key: PublicKey,
    /// The other dispatchers of its group (address, key), tried when the
    /// one above does not answer; the worker follows the group's leader
    /// wherever it is (issue 26).
    pub peers: Vec<(SocketAddr, PublicKey)>,
    /// Join secret to prove on first contact.
    pub join_secret: Option<[u8; 32]>,
    /// Name shown in `fabric workers`.
    pub name: String,
    /// Tasks run at once.
    pub slots: u32,
    /// Memory offered to tasks in all.
    pub memory_bytes: u64,
    /// Labels.
    pub labels: Vec<String>,
    /// Transport settings.
    pub net: NetConfig,
    /// Interfaces to browse on when no address is given.
    pub mdns: Interfaces,
    /// How long to browse before giving up on one try.
    pub discover_timeout: Duration,
    /// How long shutdown waits for running tasks.
    pub drain_timeout: Duration,
    /// Give up after this many failed connection attempts in a row
    /// (`None`: keep trying).
    pub max_reconnects: Option<u32>,
    /// Where "now" comes from when checking manifest expiry: the system
    /// clock, or the dispatcher's manual clock in in-process tests.
    pub clock: SharedClock,
    /// Where to tell the operator what happens (none by default).
    pub notices: crate::Notices,
    /// Native commands: the allow-list and the sandbox helper; `None` (the
    /// default) runs wasm tasks only.
    pub native: Option<NativeConfig>,
}

/// How a worker runs native commands.
#[derive(Clone, Debug)]
pub struct NativeConfig {
    /// The programs it runs, resolved at start.
    pub allow: fabric_native::AllowList,
    /// The helper program and its hidden-mode argument (the `fabric`
    /// binary and [`fabric_native::HELPER_COMMAND`]).
    pub helper: Vec<std::ffi::OsString>,
    /// Whether tasks keep the host's network (default: no network).
    pub network: bool,
    /// Whether tasks may run files they wrote (the opt-in for builds that
    /// run what they make; shown as the label `exec-in-work`).
    pub exec_in_work: bool,
    /// The most disk one task gets here.
    pub max_task_disk: u64,
}

impl NativeConfig {
    /// Default of [`NativeConfig::max_task_disk`]: 4 GiB.
    pub const DEFAULT_MAX_TASK_DISK: u64 = 4 << 30;

    /// The label a worker whose tasks may run what they write carries.
    pub const EXEC_LABEL: &str = "exec-in-work";
}

impl WorkerConfig {
    /// Defaults for a worker keeping its key in `data_dir` and pinning
    /// `dispatcher_key`: finds the dispatcher by mDNS on every interface,
    /// one slot with 1 GiB, keeps reconnecting, drains for up to a minute,
    /// on the system clock.
    pub fn new(data_dir: PathBuf, dispatcher_key: PublicKey) -> Self {
        Self {
            data_dir,
            dispatcher: None,
            dispatcher_key,
            join_secret: None,
            name: "worker".to_owned(),
            slots: 1,
            memory_bytes: 1 << 30,
            labels: Vec::new(),
            net: NetConfig::default(),
            mdns: Interfaces::All,
            discover_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(60),
            max_reconnects: None,
            clock: SystemClock::shared(),
            notices: crate::Notices::default(),
            native: None,
            peers: Vec::new(),
        }
    }
}

/// The close code a dispatcher uses for a worker it declared dead.
pub(crate) const DECLARED_DEAD: u32 = 2;

/// The worker stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] fabric_net::IdentityError),
    /// The sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] fabric_sandbox::SandboxError),
    /// The native sandbox's work dir could not be made.
    #[error("cannot prepare the native sandbox in {path}: {source}")]
    Native {
        /// The dir.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The dispatcher refused the join secret.
    #[error("the dispatcher refused to let this worker join: {0}")]
    Join(String),
    /// The dispatcher refused the registration.
    #[error("the dispatcher refused this worker: {0}")]
    Refused(String),
    /// The TLS handshake failed: the peer is not the pinned dispatcher, or
    /// does not speak Fabric.
    #[error("the TLS handshake with {addr} failed: {reason} (check --join / --dispatcher-key)")]
    Handshake {
        /// The address.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
    /// No dispatcher was found on mDNS.
    #[error("cannot find the dispatcher: {0}")]
    NotFound(#[source] MdnsError),
    /// The dispatcher could not be reached.
    #[error("cannot reach the dispatcher at {addr}: {source}")]
    Unreachable {
        /// Where it was looked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: EndpointError,
    },
    /// The dispatcher does not lead its group; the leader is `leader`, if
    /// it knows one (the worker goes there next).
    #[error("the dispatcher at {addr} does not lead its group")]
    NotLeader {
        /// The address tried.
        addr: SocketAddr,
        /// The leader it named.
        leader: Option<(String, PublicKey)>,
    },
    /// An address found on mDNS did not answer in time.
    #[error("cannot reach the dispatcher at {addr}: no answer within {after:?}")]
    NoAnswer {
        /// The address tried.
        addr: SocketAddr,
        /// How long it was given.
        after: std::time::Duration,
    },
    /// The connection to the dispatcher broke.
    #[error("lost the dispatcher at {addr}: {source}")]
    Lost {
        /// Its address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: StreamError,
    },
}

impl WorkerError {
    /// Whether the dispatcher closed the connection because it declared
    /// this worker dead (missed heartbeats).
    pub fn declared_dead(&self) -> bool {
        matches!(
            self,
            Self::Lost {
                source: StreamError::Connection(quinn::ConnectionError::ApplicationClosed(close)),
                ..
            } if close.error_code == quinn::VarInt::from_u32(DECLARED_DEAD)
        )
    }

    /// Whether retrying cannot help (wrong secret, wrong key, broken
    /// identity or sandbox): the worker stops instead of reconnecting.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Join(_)
                | Self::Refused(_)
                | Self::Handshake { .. }
                | Self::Identity(_)
                | Self::Sandbox(_)
        )
    }
}
