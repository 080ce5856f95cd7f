//! The dispatcher's I/O: QUIC service, placement loop, clock, store writes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fabric_net::mdns::{Announcer, Interfaces};
use fabric_net::{Identity, JoinToken, NetConfig, NetError, PublicKey, framed, peer_key};
use fabric_proto::wire::{
    Ack, Assign, ErrorBody, ErrorCode, Report, Request, Response, WireError, WorkerInfo, WorkerMsg,
    WorkerSummary,
};
use fabric_proto::{
    GuestEvent, Manifest, Sha256, Signed, TaskId, TaskInfo, TaskKind, TaskOutcome, TaskRecord,
    TaskSpec, TaskState, TaskStatus,
};
use fabric_store::{GroupCommit, PeerRole, Store, StoreError, StoredEvent};
use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::{Notify, mpsc};

use crate::admission::{self, AdmissionCaps};
use crate::scheduler::{Change, Completion, SchedConfig, Scheduler, WorkerKey};

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
        }
    }
}

/// The dispatcher could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DispatcherError {
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] fabric_net::IdentityError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network failed.
    #[error(transparent)]
    Net(#[from] NetError),
}

/// The dispatcher's clock: the wall clock read once at start, advanced by
/// a monotonic clock. Timestamps stay epoch milliseconds, but a wall-clock
/// step (NTP) while running cannot make every worker look dead at once.
fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<(std::time::Instant, u64)> = std::sync::OnceLock::new();
    let (at, wall) = START.get_or_init(|| (std::time::Instant::now(), fabric_proto::now_ms()));
    wall + at.elapsed().as_millis() as u64
}

enum WaitMsg {
    Event(GuestEvent),
    Done(Box<TaskInfo>),
}

struct WorkerConn {
    conn: Connection,
    info: WorkerInfo,
}

struct Core {
    sched: Scheduler,
    conns: HashMap<WorkerKey, WorkerConn>,
}

struct Shared {
    cfg: DispatcherConfig,
    identity: Identity,
    store: Store,
    commit: GroupCommit,
    core: Mutex<Core>,
    place: Notify,
    waiters: Mutex<HashMap<TaskId, Vec<mpsc::UnboundedSender<WaitMsg>>>>,
}

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
        let identity = Identity::load_or_create(&cfg.data_dir.join("node.key"))?;
        let store = Store::open(&cfg.data_dir.join("store"))?;
        let commit = GroupCommit::start(store.clone(), cfg.commit_linger);
        let started = std::time::Instant::now();
        let mut sched = Scheduler::new(cfg.sched.clone());
        let live = store.live_tasks()?;
        let count = live.len();
        for rec in sched.restore(live, clock_ms()) {
            store.save_task(&rec)?;
        }
        commit.durable().await?;
        tracing::info!(
            tasks = count,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "recovered unfinished tasks"
        );
        let endpoint = fabric_net::server_endpoint(&identity, cfg.listen, &cfg.net)?;
        let port = endpoint
            .local_addr()
            .map_err(|source| NetError::Bind {
                addr: cfg.listen,
                source,
            })?
            .port();
        let announcer = match &cfg.mdns {
            Some(ifaces) => Some(Arc::new(fabric_net::mdns::announce(
                &identity.public(),
                port,
                ifaces,
            )?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            cfg,
            identity,
            store,
            commit,
            core: Mutex::new(Core {
                sched,
                conns: HashMap::new(),
            }),
            place: Notify::new(),
            waiters: Mutex::new(HashMap::new()),
        });
        tokio::spawn(accept_loop(shared.clone(), endpoint.clone()));
        tokio::spawn(place_loop(shared.clone()));
        tokio::spawn(tick_loop(shared.clone()));
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

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        self.shared.identity.public()
    }

    /// Mints a join token; its secret's digest is stored and flushed.
    pub async fn create_join_token(&self) -> Result<JoinToken, StoreError> {
        mint_token(&self.shared).await
    }

    /// Trusts a client key (flushed before returning).
    pub async fn add_client(&self, key: &PublicKey, name: &str) -> Result<(), StoreError> {
        self.shared
            .store
            .add_peer(PeerRole::Client, &key.to_bytes(), name)?;
        self.shared.commit.durable().await
    }

    /// Trusts a worker key without a join token (static allow-list).
    pub async fn add_worker_key(&self, key: &PublicKey, name: &str) -> Result<(), StoreError> {
        self.shared
            .store
            .add_peer(PeerRole::Worker, &key.to_bytes(), name)?;
        self.shared.commit.durable().await
    }

    /// Stops accepting connections and flushes the store.
    pub async fn shutdown(&self) {
        self.endpoint
            .close(0u32.into(), b"dispatcher shutting down");
        if let Err(e) = self.shared.commit.durable().await {
            tracing::error!(error = %e, "final flush failed");
        }
    }
}

impl Shared {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn event(&self, task: Option<TaskId>, kind: &str, detail: String) {
        let ev = StoredEvent {
            at_ms: clock_ms(),
            task,
            kind: kind.to_owned(),
            detail,
        };
        if let Err(e) = self.store.append_event(&ev) {
            tracing::error!(error = %e, "cannot append to the event log");
        }
    }

    fn notify_waiters(&self, id: &TaskId, msg: impl Fn() -> WaitMsg) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let done = if let Some(list) = waiters.get_mut(id) {
            let m = msg();
            let finished = matches!(m, WaitMsg::Done(_));
            list.retain(|tx| {
                tx.send(match &m {
                    WaitMsg::Event(e) => WaitMsg::Event(e.clone()),
                    WaitMsg::Done(i) => WaitMsg::Done(i.clone()),
                })
                .is_ok()
            });
            finished || list.is_empty()
        } else {
            false
        };
        if done {
            waiters.remove(id);
        }
    }

    /// Drops waiters of `id` whose receivers are gone.
    fn prune_waiters(&self, id: &TaskId) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = waiters.get_mut(id) {
            list.retain(|tx| !tx.is_closed());
            if list.is_empty() {
                waiters.remove(id);
            }
        }
    }

    /// Applies scheduler changes to the store. Returns the finished tasks'
    /// infos to announce once durable.
    fn apply(&self, changes: Vec<Change>) -> Result<Vec<TaskInfo>, StoreError> {
        let mut finished = Vec::new();
        for change in changes {
            match change {
                Change::Save(rec) => {
                    self.event(
                        Some(rec.id),
                        "lost",
                        format!("attempt {} lost with its worker; requeued", rec.attempt),
                    );
                    self.store.save_task(&rec)?;
                }
                Change::Give(rec, message) => {
                    let mut outcome = TaskOutcome::rejected(message.clone());
                    outcome.status = TaskStatus::Failed;
                    self.event(Some(rec.id), "dead_letter", message);
                    self.store.record_result(&rec, &outcome)?;
                    finished.push(rec.info(Some(outcome)));
                }
            }
        }
        Ok(finished)
    }

    async fn durable_then_announce(&self, finished: Vec<TaskInfo>) -> Result<(), StoreError> {
        self.commit.durable().await?;
        for info in finished {
            let id = info.id;
            let info = Box::new(info);
            self.notify_waiters(&id, || WaitMsg::Done(info.clone()));
        }
        Ok(())
    }

    fn task_info(&self, id: &TaskId, with_outcome: bool) -> Result<Option<TaskInfo>, StoreError> {
        let live = self.core().sched.task(id).cloned();
        let rec = match live {
            Some(r) => r,
            None => match self.store.task(id)? {
                Some(r) => r,
                None => return Ok(None),
            },
        };
        let outcome = if with_outcome && rec.state.is_terminal() {
            self.store.result(id)?
        } else {
            None
        };
        Ok(Some(rec.info(outcome)))
    }
}

async fn mint_token(shared: &Shared) -> Result<JoinToken, StoreError> {
    let token = JoinToken::generate(shared.identity.public());
    let digest = JoinToken::secret_digest(&token.secret);
    shared
        .store
        .set_meta(&format!("join/{}", hex::encode(digest)), b"1")?;
    shared.event(None, "token_created", String::new());
    shared.commit.durable().await?;
    Ok(token)
}

async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let addr = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(shared, conn).await,
                Err(e) => tracing::warn!(%addr, error = %e, "handshake failed"),
            }
        });
    }
}

async fn serve_connection(shared: Arc<Shared>, conn: Connection) {
    let addr = conn.remote_address();
    let Some(key) = peer_key(&conn) else {
        tracing::warn!(%addr, "peer without an ed25519 key; closing");
        conn.close(1u32.into(), b"no identity");
        return;
    };
    tracing::debug!(%addr, key = %key.short(), "connection");
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                let shared = shared.clone();
                let conn = conn.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_stream(&shared, &conn, key, send, recv).await {
                        tracing::debug!(%addr, error = %e, "stream ended with an error");
                    }
                });
            }
            Err(e) => {
                tracing::debug!(%addr, error = %e, "connection closed");
                return;
            }
        }
    }
}

/// Frame cap for keys that are neither a worker nor a client (a join
/// request is a few dozen bytes).
const UNKNOWN_PEER_MAX_FRAME: usize = 4096;

async fn reply(send: &mut SendStream, resp: &Response) -> Result<(), NetError> {
    framed::send(send, resp).await
}

async fn reply_error(
    send: &mut SendStream,
    code: ErrorCode,
    msg: impl Into<String>,
) -> Result<(), NetError> {
    reply(send, &Response::Error(ErrorBody::new(code, msg))).await?;
    send.finish()?;
    Ok(())
}

fn role_of(shared: &Shared, key: &PublicKey) -> Result<(bool, bool), StoreError> {
    let k = key.to_bytes();
    Ok((
        shared.store.is_peer(PeerRole::Worker, &k)?,
        shared.store.is_peer(PeerRole::Client, &k)?,
    ))
}

async fn serve_stream(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: PublicKey,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), NetError> {
    let addr = conn.remote_address();
    let (is_worker, is_client) = match role_of(shared, &key) {
        Ok(r) => r,
        Err(e) => return reply_error(&mut send, ErrorCode::Internal, e.to_string()).await,
    };
    // A key with no role may only join: it gets a small frame cap, so it
    // cannot make the dispatcher buffer large frames.
    let max = if is_worker || is_client {
        shared.cfg.net.max_frame
    } else {
        UNKNOWN_PEER_MAX_FRAME
    };
    let request: Request = match framed::recv_raw(&mut recv, max).await {
        Ok(Some(bytes)) => match fabric_proto::wire::decode_msg(&bytes) {
            Ok(r) => r,
            Err(WireError::Unsupported(v)) => {
                tracing::warn!(%addr, version = v, "peer speaks another protocol version");
                return reply_error(
                    &mut send,
                    ErrorCode::Unsupported,
                    format!(
                        "protocol version {v} is not supported; this dispatcher speaks {}",
                        fabric_proto::wire::WIRE_VERSION
                    ),
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(%addr, key = %key.short(), error = %e, "malformed request");
                return reply_error(
                    &mut send,
                    ErrorCode::Malformed,
                    format!("malformed request: {e}"),
                )
                .await;
            }
        },
        Ok(None) => return Ok(()),
        Err(NetError::FrameTooLarge { len, max }) => {
            tracing::warn!(%addr, key = %key.short(), len, max, "refused oversized frame");
            let _ = recv.stop(1u32.into());
            return reply_error(
                &mut send,
                ErrorCode::TooLarge,
                format!("frame of {len} bytes is over the {max}-byte cap"),
            )
            .await;
        }
        Err(e) => return Err(e),
    };
    let deny = |what: &str| {
        format!(
            "key {key} is not allowed to {what}; {}",
            if is_worker || is_client {
                "it has another role"
            } else {
                "workers join with `fabric worker --join TOKEN`, clients need a cluster profile from `fabric up`/`fabric dispatcher`"
            }
        )
    };
    match request {
        Request::Join { secret } => {
            let digest = JoinToken::secret_digest(&secret);
            let known = shared
                .store
                .meta(&format!("join/{}", hex::encode(digest)))
                .map_err(|e| NetError::Unexpected(e.to_string()))?
                .is_some();
            if !known {
                tracing::warn!(%addr, key = %key.short(), "worker presented a wrong join token");
                return reply_error(
                    &mut send,
                    ErrorCode::Unauthorized,
                    "join token secret is not valid for this dispatcher",
                )
                .await;
            }
            if let Err(e) =
                shared
                    .store
                    .add_peer(PeerRole::Worker, &key.to_bytes(), &addr.to_string())
            {
                return reply_error(&mut send, ErrorCode::Internal, e.to_string()).await;
            }
            shared.event(None, "worker_joined", format!("{key} from {addr}"));
            if let Err(e) = shared.commit.durable().await {
                return reply_error(&mut send, ErrorCode::Internal, e.to_string()).await;
            }
            tracing::info!(%addr, key = %key.short(), "worker joined");
            reply(&mut send, &Response::Joined).await?;
            send.finish()?;
        }
        Request::Register(info) => {
            if !is_worker {
                tracing::warn!(%addr, key = %key.short(), "unjoined worker tried to register");
                return reply_error(
                    &mut send,
                    ErrorCode::Unauthorized,
                    deny("register as a worker"),
                )
                .await;
            }
            control_stream(shared, conn, key, info, send, recv).await?;
        }
        Request::GetBlob { sha } => {
            if !is_worker && !is_client {
                return reply_error(&mut send, ErrorCode::Unauthorized, deny("fetch blobs")).await;
            }
            match shared.store.blob(&sha) {
                Ok(Some(bytes)) => reply(&mut send, &Response::BlobBytes { bytes }).await?,
                Ok(None) => {
                    return reply_error(&mut send, ErrorCode::NotFound, format!("no blob {sha}"))
                        .await;
                }
                Err(e) => return reply_error(&mut send, ErrorCode::Internal, e.to_string()).await,
            }
            send.finish()?;
        }
        other => {
            if !is_client {
                tracing::warn!(%addr, key = %key.short(), "request from a key that is not a client");
                return reply_error(
                    &mut send,
                    ErrorCode::Unauthorized,
                    deny("use the client API"),
                )
                .await;
            }
            client_request(shared, other, &mut send).await?;
            send.finish()?;
        }
    }
    Ok(())
}

async fn client_request(
    shared: &Arc<Shared>,
    request: Request,
    send: &mut SendStream,
) -> Result<(), NetError> {
    let resp = match request {
        Request::PutBlob { bytes } => match admission::check_module(&bytes, &shared.cfg.caps) {
            Err(e) => Response::Error(e),
            Ok(()) => match shared.store.put_blob(&bytes) {
                Ok(sha) => match shared.commit.durable().await {
                    Ok(()) => Response::Blob { sha },
                    Err(e) => internal(e),
                },
                Err(e) => internal(e),
            },
        },
        Request::HasBlob { sha } => match shared.store.has_blob(&sha) {
            Ok(b) => Response::HasBlob(b),
            Err(e) => internal(e),
        },
        Request::Submit { spec, wait: false } => submit(shared, spec).await,
        Request::Submit { spec, wait: true } => match submit(shared, spec).await {
            Response::Submitted { id } => {
                reply(send, &Response::Submitted { id }).await?;
                return wait(shared, id, send).await;
            }
            other => other,
        },
        Request::Status { id } => lookup(shared, &id, false),
        Request::Result { id } => lookup(shared, &id, true),
        Request::Wait { id } => return wait(shared, id, send).await,
        Request::List {
            state,
            limit,
            before,
        } => {
            let limit = (limit as usize).clamp(1, 10_000);
            list(shared, state, limit, before.as_ref())
        }
        Request::Workers => Response::Workers(workers(shared)),
        Request::Cancel { id } => cancel(shared, id).await,
        Request::CreateJoinToken => match mint_token(shared).await {
            Ok(token) => Response::JoinToken {
                token: token.to_string(),
            },
            Err(e) => internal(e),
        },
        Request::Join { .. } | Request::Register(_) | Request::GetBlob { .. } => {
            unreachable!("handled by serve_stream")
        }
    };
    reply(send, &resp).await
}

/// Tasks newest first. Unfinished tasks come from the scheduler (the store
/// does not track leases: a restart voids them), finished ones from the
/// store.
fn list(
    shared: &Shared,
    state: Option<TaskState>,
    limit: usize,
    before: Option<&TaskId>,
) -> Response {
    let live: Vec<TaskRecord> = {
        let core = shared.core();
        core.sched
            .live_records()
            .filter(|r| state.is_none_or(|s| s == r.state))
            .filter(|r| before.is_none_or(|b| r.id < *b))
            .cloned()
            .collect()
    };
    let stored = match state {
        Some(TaskState::Queued | TaskState::Running) => Vec::new(),
        _ => match shared.store.list(state, limit, before) {
            Ok(recs) => recs,
            Err(e) => return internal(e),
        },
    };
    let mut by_id: std::collections::BTreeMap<TaskId, TaskRecord> = stored
        .into_iter()
        .filter(|r| r.state.is_terminal())
        .map(|r| (r.id, r))
        .collect();
    by_id.extend(live.into_iter().map(|r| (r.id, r)));
    Response::Tasks(
        by_id
            .into_values()
            .rev()
            .take(limit)
            .map(|r| r.info(None))
            .collect(),
    )
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    Response::Error(ErrorBody::new(ErrorCode::Internal, e.to_string()))
}

fn lookup(shared: &Shared, id: &TaskId, with_outcome: bool) -> Response {
    match shared.task_info(id, with_outcome) {
        Ok(Some(info)) => Response::Task(Box::new(info)),
        Ok(None) => Response::Error(ErrorBody::new(ErrorCode::NotFound, format!("no task {id}"))),
        Err(e) => internal(e),
    }
}

fn workers(shared: &Shared) -> Vec<WorkerSummary> {
    let core = shared.core();
    let mut out: Vec<WorkerSummary> = core
        .sched
        .workers()
        .filter_map(|(key, _slots, running, last_seen)| {
            let c = core.conns.get(key)?;
            Some(WorkerSummary {
                key: *key,
                addr: c.conn.remote_address().to_string(),
                info: c.info.clone(),
                running,
                last_seen_ms: last_seen,
            })
        })
        .collect();
    out.sort_by(|a, b| a.info.name.cmp(&b.info.name).then(a.key.cmp(&b.key)));
    out
}

async fn submit(shared: &Arc<Shared>, spec: TaskSpec) -> Response {
    if let Err(e) = admission::check_spec(&spec, &shared.cfg.caps) {
        return Response::Error(e);
    }
    if let TaskKind::Wasm { module } = &spec.kind {
        match shared.store.has_blob(module) {
            Ok(true) => {}
            Ok(false) => {
                return Response::Error(ErrorBody::new(
                    ErrorCode::NotFound,
                    format!("module {module} is not stored on the dispatcher; upload it first"),
                ));
            }
            Err(e) => return internal(e),
        }
    }
    let seq = match shared.store.next_seq() {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let rec = TaskRecord::queued(TaskId::new(), spec, seq, clock_ms());
    if let Err(e) = shared.store.save_task(&rec) {
        return internal(e);
    }
    if let Err(e) = shared.commit.durable().await {
        return internal(e);
    }
    let id = rec.id;
    shared.core().sched.submit(rec);
    shared.place.notify_one();
    Response::Submitted { id }
}

async fn wait(shared: &Arc<Shared>, id: TaskId, send: &mut SendStream) -> Result<(), NetError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared
        .waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id)
        .or_default()
        .push(tx);
    // Registered first, then checked: a finish in between is not missed.
    let early = match shared.task_info(&id, true) {
        Ok(Some(info)) if info.state.is_terminal() => Some(Response::Task(Box::new(info))),
        Ok(Some(_)) => None,
        Ok(None) => Some(Response::Error(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no task {id}"),
        ))),
        Err(e) => Some(internal(e)),
    };
    if let Some(resp) = early {
        drop(rx);
        shared.prune_waiters(&id);
        return reply(send, &resp).await;
    }
    while let Some(msg) = rx.recv().await {
        match msg {
            WaitMsg::Event(e) => reply(send, &Response::Event(e)).await?,
            WaitMsg::Done(info) => return reply(send, &Response::Task(info)).await,
        }
    }
    Ok(())
}

async fn cancel(shared: &Arc<Shared>, id: TaskId) -> Response {
    let cancelled = shared.core().sched.cancel(&id, clock_ms());
    let Some((rec, running)) = cancelled else {
        return match shared.store.task(&id) {
            Ok(Some(rec)) => Response::Error(ErrorBody::new(
                ErrorCode::Conflict,
                format!(
                    "task {id} already finished ({})",
                    rec.status.map_or(rec.state.as_str(), |s| s.as_str())
                ),
            )),
            Ok(None) => {
                Response::Error(ErrorBody::new(ErrorCode::NotFound, format!("no task {id}")))
            }
            Err(e) => internal(e),
        };
    };
    let mut outcome = TaskOutcome::rejected("cancelled by request");
    outcome.status = TaskStatus::Cancelled;
    if let Err(e) = shared.store.record_result(&rec, &outcome) {
        return internal(e);
    }
    shared.event(
        Some(id),
        "cancelled",
        format!(
            "was {}",
            if running.is_some() {
                "running"
            } else {
                "queued"
            }
        ),
    );
    let info = rec.info(Some(outcome));
    if let Err(e) = shared.durable_then_announce(vec![info.clone()]).await {
        return internal(e);
    }
    if let Some((wk, attempt)) = running {
        let conn = shared.core().conns.get(&wk).map(|c| c.conn.clone());
        if let Some(conn) = conn {
            tokio::spawn(async move {
                let result = async {
                    let (mut s, _r) = conn.open_bi().await?;
                    framed::send(&mut s, &Assign::Cancel { id, attempt }).await?;
                    s.finish()?;
                    Ok::<_, NetError>(())
                }
                .await;
                if let Err(e) = result {
                    tracing::warn!(task = %id, error = %e, "could not tell the worker to cancel");
                }
            });
        }
    }
    shared.place.notify_one();
    Response::Task(Box::new(info))
}

async fn control_stream(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: PublicKey,
    info: WorkerInfo,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), NetError> {
    let wk = WorkerKey(key.to_bytes());
    let addr = conn.remote_address();
    {
        let mut core = shared.core();
        core.sched.add_worker(wk, &info, clock_ms());
        core.conns.insert(
            wk,
            WorkerConn {
                conn: conn.clone(),
                info: info.clone(),
            },
        );
    }
    tracing::info!(%addr, key = %key.short(), name = %info.name, slots = info.slots, "worker registered");
    reply(
        &mut send,
        &Response::Registered {
            heartbeat_ms: shared.cfg.sched.heartbeat_ms,
        },
    )
    .await?;
    shared.place.notify_one();
    let max = shared.cfg.net.max_frame;
    let ended = loop {
        match framed::recv::<WorkerMsg>(&mut recv, max).await {
            Ok(Some(WorkerMsg::Heartbeat { .. })) => {
                let mut core = shared.core();
                if !core.sched.heartbeat(&wk, clock_ms()) {
                    // Declared dead meanwhile; it is back.
                    tracing::info!(key = %key.short(), "worker came back; re-registering");
                    core.sched.add_worker(wk, &info, clock_ms());
                    drop(core);
                    shared.place.notify_one();
                }
            }
            Ok(Some(WorkerMsg::Draining)) => {
                tracing::info!(key = %key.short(), "worker is draining");
                shared.core().sched.drain_worker(&wk);
            }
            Ok(None) => break "closed its control stream".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    // Only forget the worker if this connection is still its current one.
    let changes = {
        let mut core = shared.core();
        let current = core
            .conns
            .get(&wk)
            .is_some_and(|c| c.conn.stable_id() == conn.stable_id());
        if current {
            core.conns.remove(&wk);
            core.sched.remove_worker(&wk, clock_ms())
        } else {
            Vec::new()
        }
    };
    tracing::info!(key = %key.short(), reason = %ended, requeued = changes.len(), "worker gone");
    let finished = shared
        .apply(changes)
        .map_err(|e| NetError::Unexpected(e.to_string()))?;
    shared
        .durable_then_announce(finished)
        .await
        .map_err(|e| NetError::Unexpected(e.to_string()))?;
    shared.place.notify_one();
    Ok(())
}

async fn place_loop(shared: Arc<Shared>) {
    loop {
        shared.place.notified().await;
        let now = clock_ms();
        let leased: Vec<(TaskRecord, Connection, WorkerKey)> = {
            let mut core = shared.core();
            let leased = core.sched.place(now);
            leased
                .into_iter()
                .filter_map(|rec| {
                    let wk = rec.worker?;
                    let conn = core.conns.get(&wk)?.conn.clone();
                    Some((rec, conn, wk))
                })
                .collect()
        };
        if leased.is_empty() {
            continue;
        }
        // Leases live in memory only: a restart voids every lease anyway
        // (those tasks requeue), and a re-issued attempt number is told
        // apart by its manifest's signing instant.
        for (rec, conn, wk) in leased {
            tokio::spawn(run_assignment(shared.clone(), rec, conn, wk));
        }
    }
}

async fn tick_loop(shared: Arc<Shared>) {
    let period = Duration::from_millis((shared.cfg.sched.heartbeat_ms / 4).clamp(20, 1_000));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let changes = shared.core().sched.tick(clock_ms());
        if !changes.is_empty() {
            match shared.apply(changes) {
                Ok(finished) => {
                    if let Err(e) = shared.durable_then_announce(finished).await {
                        tracing::error!(error = %e, "cannot flush requeued tasks");
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot record requeued tasks"),
            }
        }
        shared.place.notify_one();
    }
}

fn manifest_for(shared: &Shared, rec: &TaskRecord) -> Manifest {
    let now = clock_ms();
    Manifest {
        version: Manifest::VERSION,
        task_id: rec.id,
        attempt: rec.attempt,
        kind: rec.spec.kind.clone(),
        args: rec.spec.args.clone(),
        env: rec.spec.env.clone(),
        input_digest: Sha256::of(&rec.spec.input),
        limits: rec.spec.limits,
        issued_at_ms: now,
        expires_at_ms: now + shared.cfg.manifest_ttl.as_millis() as u64,
    }
}

async fn run_assignment(shared: Arc<Shared>, rec: TaskRecord, conn: Connection, wk: WorkerKey) {
    let id = rec.id;
    let attempt = rec.attempt;
    let lost = match assignment_exchange(&shared, &rec, &conn, wk).await {
        Ok(None) => return,
        Ok(Some(reason)) => format!("refused by the worker: {reason}"),
        Err(e) => {
            tracing::warn!(task = %id, attempt, error = %e, "assignment stream failed");
            format!("assignment stream failed: {e}")
        }
    };
    // The attempt ended without a result of the task's own. Requeue it now
    // whether or not the connection is gone: if the worker re-registered on
    // a new connection meanwhile, nobody else would. (A no-op when the
    // lease was already given away.)
    let change = shared
        .core()
        .sched
        .abandon(&id, attempt, &wk, &lost, clock_ms());
    if let Some(change) = change {
        match shared.apply(vec![change]) {
            Ok(finished) => {
                if let Err(e) = shared.durable_then_announce(finished).await {
                    tracing::error!(error = %e, "cannot flush a requeued attempt");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot requeue a lost attempt"),
        }
        shared.place.notify_one();
    }
}

/// Runs one assignment; `Some(reason)` when the worker refused it.
async fn assignment_exchange(
    shared: &Arc<Shared>,
    rec: &TaskRecord,
    conn: &Connection,
    wk: WorkerKey,
) -> Result<Option<String>, NetError> {
    let manifest = Signed::sign(shared.identity.signing_key(), &manifest_for(shared, rec))
        .map_err(|e| NetError::Unexpected(e.to_string()))?;
    let (mut send, mut recv) = conn.open_bi().await?;
    framed::send(
        &mut send,
        &Assign::Run {
            manifest,
            input: rec.spec.input.clone(),
        },
    )
    .await?;
    let max = shared.cfg.net.max_frame;
    loop {
        let report: Report = framed::expect(&mut recv, max).await?;
        let outcome = match report {
            Report::Event(e) => {
                shared.notify_waiters(&rec.id, || WaitMsg::Event(e.clone()));
                continue;
            }
            Report::Done(outcome) => *outcome,
            Report::Refused { reason } => {
                tracing::warn!(task = %rec.id, attempt = rec.attempt, %reason, "worker refused the assignment");
                framed::send(&mut send, &Ack { recorded: false }).await?;
                send.finish()?;
                return Ok(Some(reason));
            }
        };
        let recorded = complete(shared, rec.id, rec.attempt, wk, outcome)
            .await
            .map_err(|e| NetError::Unexpected(e.to_string()))?;
        framed::send(&mut send, &Ack { recorded }).await?;
        send.finish()?;
        return Ok(None);
    }
}

async fn complete(
    shared: &Arc<Shared>,
    id: TaskId,
    attempt: u32,
    wk: WorkerKey,
    outcome: TaskOutcome,
) -> Result<bool, StoreError> {
    let decision = shared
        .core()
        .sched
        .complete(&id, attempt, &wk, outcome.status, clock_ms());
    match decision {
        Completion::Stale => {
            tracing::warn!(task = %id, attempt, worker = %wk.short(), "dropping a result from a stale attempt");
            shared.event(
                Some(id),
                "stale_result",
                format!("attempt {attempt} from {wk}"),
            );
            Ok(false)
        }
        Completion::Retry(rec) => {
            shared.event(
                Some(id),
                "retry",
                format!(
                    "attempt {attempt} ended {}; retry {} of {} after backoff",
                    outcome.status, rec.failures, rec.spec.retries
                ),
            );
            shared.store.save_task(&rec)?;
            shared.commit.durable().await?;
            Ok(false)
        }
        Completion::Final(rec) => {
            if rec.dead_letter {
                shared.event(Some(id), "dead_letter", format!("ended {}", outcome.status));
            }
            let recorded = shared.store.record_result(&rec, &outcome)?;
            let info = if recorded {
                rec.info(Some(outcome))
            } else {
                // Only the recorded result is ever announced.
                tracing::warn!(task = %id, "a result was already recorded; dropping this one");
                match (shared.store.task(&id)?, shared.store.result(&id)?) {
                    (Some(stored), Some(o)) => stored.info(Some(o)),
                    _ => rec.info(None),
                }
            };
            shared.durable_then_announce(vec![info]).await?;
            shared.place.notify_one();
            Ok(recorded)
        }
    }
}
