//! The Fabric dispatcher.
//!
//! [`Dispatcher::start`] opens the store, reloads unfinished tasks, listens
//! for QUIC connections and runs three loops: one accepts connections and
//! serves their streams, one places ready tasks on workers, one ticks the
//! clock (heartbeat deadlines, retry delays). The decisions live in the
//! [`scheduler`] state machine; the `service` folder wires it to the store
//! and the network, one room per concern (see its docs). Everything
//! acknowledged to a client or worker is flushed first (group commit).
//!
//! The REST API is a front end of its own (`fabric-api`), served over
//! [`Dispatcher::front`]: the [`front`] module is what it reaches.

pub mod admission;
pub mod front;
pub mod jobs;
mod metrics;
pub mod scheduler;
pub mod schedules;
mod service;

pub use admission::AdmissionCaps;
pub use fabric_raft::{Member as GroupMember, NodeStatus as GroupStatus, RaftConfig};
pub use fabric_store::{BackupSummary, RestoreError, restore as restore_backup};
pub use fabric_store::{KeyState, OperatorKey, RetentionPolicy, Wrap as KeyWrap, generate_key_hex};
pub use scheduler::SchedConfig;
pub use service::{
    ClusterConfig, DEFAULT_JOIN_TOKEN_TTL, DEFAULT_MAX_WORKER_MEMORY, DEFAULT_MAX_WORKER_SLOTS,
    Dispatcher, DispatcherConfig, DispatcherError, PeerLimits, RetentionConfig, WorkerCaps,
};
