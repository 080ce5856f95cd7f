//! The dispatcher's I/O around the scheduler state machine.
//!
//! | room | holds |
//! | --- | --- |
//! | [`config`] | [`DispatcherConfig`] |
//! | `state` | shared state and the one commit path (write, flush, announce, wake placement) |
//! | `waiters` | clients waiting for a task's events and end |
//! | `feed` | the live feed of what happens (REST's event stream) |
//! | `routing` | accepting connections, authenticating keys into roles, handing each stream to its room |
//! | `requests` | one function per client request, errors mapped to the wire in one place |
//! | `api_tokens` | REST API tokens: minting, checking a bearer token, listing, revoking |
//! | `join` | join tokens: minting, listing, revoking, checking a worker's secret |
//! | `caps` | what a worker may claim at registration |
//! | `workers` | removing a worker: key, connection, leases |
//! | `control` | a worker's control stream: registration, heartbeats, drain |
//! | `assign` | the placement loop, manifests, the assignment exchange, completion, cancels sent to workers |
//! | `retention` | the periodic sweep of old events, finished tasks and unused blobs |
//! | `ticker` | heartbeat deadlines and retry delays, driven by the clock |

pub mod api_tokens;
mod assign;
pub(crate) mod audit;
mod cancelling;
mod caps;
pub mod config;
mod control;
mod deps;
mod error;
pub(crate) mod feed;
mod gone;
mod group;
mod join;
mod ledger;
mod peers;
pub(crate) mod requests;
mod retention;
mod routing;
pub(crate) mod state;
mod ticker;
pub(crate) mod waiters;
mod workers;

use std::net::SocketAddr;
use std::sync::Arc;

use fabric_net::mdns::Announcer;
use fabric_net::{EndpointError, Identity, JoinToken, PublicKey};
use fabric_store::{GroupCommit, PeerRole, Store, StoreError};

pub use caps::{DEFAULT_MAX_WORKER_MEMORY, DEFAULT_MAX_WORKER_SLOTS, WorkerCaps};
pub use config::{ClusterConfig, DEFAULT_JOIN_TOKEN_TTL, DispatcherConfig, PeerLimits};
pub use error::DispatcherError;
pub(crate) use error::ServiceError;
pub use retention::RetentionConfig;
use state::Shared;

use fabric_proto::{TaskOutcome, TaskStatus};

use crate::scheduler::{Change, Scheduler};

/// A running dispatcher. Dropping it does not stop it; call
/// [`Dispatcher::shutdown`].
#[derive(Clone)]
pub struct Dispatcher {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    _announcer: Option<Arc<Announcer>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("key", &self.shared.identity.public())
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// Opens the data dir, recovers state and starts serving.
    pub async fn start(cfg: DispatcherConfig) -> Result<Self, DispatcherError> {
        fabric_net::create_private_dir(&cfg.data_dir).map_err(|source| {
            DispatcherError::DataDir {
                path: cfg.data_dir.clone(),
                source,
            }
        })?;
        let identity = Identity::load_or_create(&cfg.data_dir.join("node.key"))?;
        // A backup a crash cut short (it holds the data as stored: keep
        // none lying around).
        if let Ok(dir) = std::fs::read_dir(cfg.data_dir.join("backups")) {
            for e in dir.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let store = Store::open_keyed(&cfg.data_dir.join("store"), cfg.operator_key.as_ref())?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let observer = metrics.clone();
        let commit = GroupCommit::start_observed(store.clone(), cfg.commit_linger, move |took| {
            observer.flushed(took)
        });
        let observer = metrics.clone();
        let writer_flushed: fabric_store::FlushObserver =
            Arc::new(move |took| observer.flushed(took));
        let endpoint = fabric_net::server_endpoint(&identity, cfg.listen, &cfg.net)?;
        let bound = endpoint
            .local_addr()
            .map_err(|source| EndpointError::Bind {
                addr: cfg.listen,
                source,
            })?;
        let (ledger, sched, deps) = match &cfg.cluster {
            // Alone: today's dispatcher, its queue recovered now.
            None => {
                let ledger = ledger::Ledger::local(store.clone(), commit, writer_flushed);
                let (sched, deps) = recover(&cfg, &store, &ledger, false).await?;
                (ledger, sched, deps)
            }
            // In a group: the queue is recovered when this one leads.
            Some(cluster) => {
                let node =
                    group::join(cluster, &identity, &endpoint, bound, &cfg.net, &store).await?;
                (
                    ledger::Ledger::raft(store.clone(), node),
                    Scheduler::new(cfg.sched.clone()),
                    deps::Deps::default(),
                )
            }
        };
        // Only what the endpoint serves on is announced (issue 9, item 12).
        let announcer = match &cfg.mdns {
            Some(ifaces) => Some(Arc::new(fabric_net::mdns::announce(
                &identity.public(),
                bound,
                ifaces,
            )?)),
            None => None,
        };
        let shared = Arc::new(Shared::new(cfg, identity, store, ledger, sched, metrics));
        shared.core().deps = deps;
        // A rewrap cut short by a stop goes on where it was.
        if shared.store.rewrap_pending()? {
            tracing::info!("resuming the rewrap of the store under the active data key");
            requests::at_rest::spawn_rewrap(shared.clone());
        }
        tokio::spawn(routing::accept_loop(shared.clone(), endpoint.clone()));
        tokio::spawn(assign::place_loop(shared.clone()));
        tokio::spawn(ticker::tick_loop(shared.clone()));
        tokio::spawn(requests::schedules::fire_loop(shared.clone()));
        tokio::spawn(retention::retention_loop(shared.clone()));
        if shared.group.is_some() {
            tokio::spawn(group::lead_loop(shared.clone()));
            tokio::spawn(group::keep_loop(shared.clone()));
        }
        shared.place.notify_one();
        Ok(Self {
            shared,
            endpoint,
            _announcer: announcer,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr().unwrap_or(self.shared.cfg.listen)
    }

    /// The service as a front end (the REST API, `fabric-api`) reaches
    /// it: the same state and request functions the QUIC service uses.
    pub fn front(&self) -> Arc<crate::front::Shared> {
        self.shared.clone()
    }

    /// Mints a REST API token of `role`, accepted for `ttl` (`None`: until
    /// revoked); returns its text.
    pub async fn create_api_token(
        &self,
        role: fabric_proto::ApiRole,
        ttl: Option<std::time::Duration>,
    ) -> Result<String, StoreError> {
        Ok(ledger::setup(api_tokens::mint(&self.shared, role, ttl))
            .await?
            .0)
    }

    /// The role of an API token's text, if it is accepted now.
    pub fn api_token_role(&self, token: &str) -> Result<Option<fabric_proto::ApiRole>, StoreError> {
        Ok(api_tokens::check(&self.shared, token)?
            .ok()
            .map(|(_, role)| role))
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        self.shared.identity.public()
    }

    /// The store's keyring: what wraps it, the active data key.
    pub fn key_state(&self) -> fabric_store::KeyState {
        self.shared.store.keyring().state()
    }

    /// Clients waiting for a task right now. For tests.
    #[doc(hidden)]
    pub fn open_waits(&self) -> usize {
        self.shared.waiters.len()
    }

    /// Its store. For tests (with the store's `faults` feature, to make
    /// writes fail).
    #[doc(hidden)]
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Mints a join token with the default lifetime and unlimited uses; its
    /// record is stored and flushed.
    pub async fn create_join_token(&self) -> Result<JoinToken, StoreError> {
        self.create_join_token_with(None, None).await
    }

    /// Mints a join token accepted for `ttl` (default
    /// [`DispatcherConfig::join_token_ttl`]) and `uses` joins (default
    /// unlimited).
    pub async fn create_join_token_with(
        &self,
        ttl: Option<std::time::Duration>,
        uses: Option<u32>,
    ) -> Result<JoinToken, StoreError> {
        let req = join::TokenRequest { ttl, uses };
        Ok(ledger::setup(join::mint(&self.shared, req)).await?.0)
    }

    /// Whether this token would be accepted now (not expired, used up or
    /// revoked).
    pub fn join_token_is_valid(&self, token: &JoinToken) -> Result<bool, StoreError> {
        join::is_valid(&self.shared, token)
    }

    /// Trusts a client key (flushed before returning).
    pub async fn add_client(&self, key: &PublicKey, name: &str) -> Result<(), StoreError> {
        self.add_peer(PeerRole::Client, key, name).await
    }

    /// Trusts an admin client key: a client that may also manage join
    /// tokens and remove workers.
    pub async fn add_admin(&self, key: &PublicKey, name: &str) -> Result<(), StoreError> {
        ledger::setup(async {
            self.shared
                .ledger
                .add_peer(PeerRole::Client, &key.to_bytes(), name)?;
            self.add_peer(PeerRole::Admin, key, name).await
        })
        .await
    }

    /// Trusts a worker key without a join token (static allow-list).
    pub async fn add_worker_key(&self, key: &PublicKey, name: &str) -> Result<(), StoreError> {
        self.add_peer(PeerRole::Worker, key, name).await
    }

    async fn add_peer(
        &self,
        role: PeerRole,
        key: &PublicKey,
        name: &str,
    ) -> Result<(), StoreError> {
        ledger::setup(async {
            self.shared.ledger.add_peer(role, &key.to_bytes(), name)?;
            self.shared.ledger.durable().await
        })
        .await
    }

    /// Stops accepting connections and flushes the store.
    pub async fn shutdown(&self) {
        self.endpoint
            .close(0u32.into(), b"dispatcher shutting down");
        if let Err(e) = self.shared.ledger.durable().await {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

/// Reloads unfinished tasks into a fresh scheduler. Leases do not survive a
/// restart: tasks that were running lost that attempt and go back to the
/// queue, or are given up when lost too often (recorded, and flushed
/// before serving).
/// Reloads the queue from the store: after a restart (`take_over`
/// false: every run was lost), or when this member takes over its group's
/// queue (the workers kept running: their runs are adopted, see
/// `scheduler/adopt.rs`).
async fn recover(
    cfg: &DispatcherConfig,
    store: &Store,
    ledger: &ledger::Ledger,
    take_over: bool,
) -> Result<(Scheduler, deps::Deps), StoreError> {
    let started = std::time::Instant::now();
    let mut sched = Scheduler::new(cfg.sched.clone());
    let now = cfg.clock.now_ms();
    let (changes, count) = if take_over {
        let live = store.live_tasks()?;
        let count = live.len();
        let workers: Vec<_> = store
            .peers(PeerRole::Worker)?
            .into_iter()
            .map(|(k, _)| fabric_proto::WorkerKey(k))
            .collect();
        (sched.take_over(live, &workers, now), count)
    } else {
        // Queued tasks are held cold (`scheduler/cold.rs`): read slim, from
        // the queue index's summaries. Running and waiting ones are read
        // whole.
        let mut whole = Vec::new();
        // Stored less finished: the unfinished tasks, about (a reserve).
        let totals = store.totals()?;
        let unfinished = totals.tasks.saturating_sub(totals.finished_total());
        sched.expect_cold(
            usize::try_from(unfinished).unwrap_or(usize::MAX),
            cfg.caps.max_queued,
        );
        let count = store.each_queued(crate::scheduler::ColdTask::of, |made| match made {
            Ok(task) => sched.file_cold(task),
            Err(id) => whole.push(id),
        })?;
        sched.compact_queue();
        let mut records = Vec::with_capacity(whole.len());
        for id in whole {
            records.extend(store.task(&id)?);
        }
        (sched.restore(records, now), count)
    };
    for change in changes {
        match change {
            Change::Lost(rec, _) | Change::Refused(rec, _) => {
                ledger.save_task(&rec)?;
            }
            Change::Give(rec, message) => {
                tracing::warn!(task = %rec.id, %message, "giving up a task that was running at every restart");
                let outcome = TaskOutcome::ended(TaskStatus::Failed, message);
                ledger.record_result(&rec, &outcome)?;
            }
        }
    }
    let deps = deps::restore(&mut sched, store, ledger, cfg.clock.now_ms()).await?;
    ledger.durable().await?;
    if !take_over {
        // The memory the restart's reading freed goes back to the system:
        // a million records decoded leave much of it in the allocator
        // (issue 27: the RSS target).
        fabric_alloc::give_back();
    }
    tracing::info!(
        tasks = count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered unfinished tasks"
    );
    Ok((sched, deps))
}
