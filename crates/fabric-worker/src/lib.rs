//! The Fabric worker.
//!
//! [`run`] connects to the dispatcher (given, or found by mDNS), pinning its
//! key; proves a join secret once if it has one; registers its capacity and
//! keeps a control stream alive with heartbeats. The dispatcher opens one
//! stream per assignment: the worker verifies the manifest
//! ([`verify::verify_manifest`]), fetches the module by hash once and keeps
//! it compiled, runs it in `fabric-sandbox`, streams guest events, reports
//! the outcome and waits for the ack. When the connection drops it
//! reconnects; when asked to shut down it drains running work first.

pub mod verify;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_net::mdns::Interfaces;
use fabric_net::{Identity, NetConfig, NetError, PublicKey, framed};
use fabric_proto::wire::{
    Ack, Assign, ErrorCode, Report, Request, Response, WorkerInfo, WorkerMsg,
};
use fabric_proto::{Manifest, Sha256, TaskId, TaskKind, TaskOutcome, TaskStatus, now_ms};
use fabric_sandbox::{PreparedModule, WasmRuntime, WasmRuntimeConfig, WasmTask};
use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::{OnceCell, mpsc, oneshot};

use crate::verify::{ReplayGuard, verify_manifest};

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Key and module cache live here.
    pub data_dir: PathBuf,
    /// Dispatcher address; `None` finds it by mDNS.
    pub dispatcher: Option<SocketAddr>,
    /// The dispatcher's key, pinned.
    pub dispatcher_key: PublicKey,
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
}

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
    /// The dispatcher could not be reached.
    #[error("cannot reach the dispatcher{}: {source}", addr.map(|a| format!(" at {a}")).unwrap_or_default())]
    Unreachable {
        /// Where it was looked for.
        addr: Option<SocketAddr>,
        /// Why.
        #[source]
        source: NetError,
    },
}

struct State {
    cfg: WorkerConfig,
    identity: Identity,
    runtime: Arc<WasmRuntime>,
    replay: Mutex<ReplayGuard>,
    modules: Mutex<HashMap<Sha256, Arc<OnceCell<PreparedModule>>>>,
    running: Mutex<HashMap<(TaskId, u32), oneshot::Sender<()>>>,
    active: AtomicU32,
    draining: AtomicBool,
    control: Mutex<Option<Connection>>,
    /// Set when a session registered (resets the reconnect count).
    registered: AtomicBool,
    /// Cancels that arrived before their task started running.
    cancelled: Mutex<std::collections::HashSet<(TaskId, u32)>>,
}

/// Runs a worker until `shutdown` resolves (then drains) or a fatal error.
pub async fn run(cfg: WorkerConfig, shutdown: impl Future<Output = ()>) -> Result<(), WorkerError> {
    let identity = Identity::load_or_create(&cfg.data_dir.join("node.key"))?;
    let runtime = WasmRuntime::new(WasmRuntimeConfig {
        max_concurrent: cfg.slots.max(1),
        max_memory_bytes: cfg.memory_bytes.min(4 << 30),
        cache_dir: Some(cfg.data_dir.join("modules")),
        ..WasmRuntimeConfig::default()
    })?;
    let state = Arc::new(State {
        identity,
        runtime: Arc::new(runtime),
        replay: Mutex::new(ReplayGuard::default()),
        modules: Mutex::new(HashMap::new()),
        running: Mutex::new(HashMap::new()),
        active: AtomicU32::new(0),
        draining: AtomicBool::new(false),
        control: Mutex::new(None),
        registered: AtomicBool::new(false),
        cancelled: Mutex::new(std::collections::HashSet::new()),
        cfg,
    });
    tracing::info!(key = %state.identity.public(), slots = state.cfg.slots, "worker starting");
    tokio::pin!(shutdown);
    let mut joined = state.cfg.join_secret.is_none();
    let mut failures = 0u32;
    loop {
        let session = session(&state, &mut joined);
        tokio::pin!(session);
        let result = tokio::select! {
            r = &mut session => r,
            () = &mut shutdown => {
                // Keep the session (heartbeats, result reports) going while
                // running tasks finish; it tells the dispatcher we drain.
                tokio::select! {
                    () = drain(&state) => {}
                    _ = &mut session => {
                        tracing::warn!("lost the dispatcher while draining");
                    }
                }
                return Ok(());
            }
        };
        if state.registered.swap(false, Ordering::SeqCst) {
            failures = 0;
        }
        match result {
            Ok(()) => {}
            Err(
                e @ (WorkerError::Join(_)
                | WorkerError::Refused(_)
                | WorkerError::Handshake { .. }
                | WorkerError::Identity(_)
                | WorkerError::Sandbox(_)),
            ) => return Err(e),
            Err(e) => {
                failures += 1;
                if state.cfg.max_reconnects.is_some_and(|m| failures > m) {
                    return Err(e);
                }
                tracing::warn!(error = %e, "lost the dispatcher; reconnecting");
            }
        }
        let backoff = Duration::from_millis((200u64 << failures.min(4)).min(3_000));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => {
                drain(&state).await;
                return Ok(());
            }
        }
    }
}

async fn drain(state: &Arc<State>) {
    state.draining.store(true, Ordering::SeqCst);
    let running = state.active.load(Ordering::SeqCst);
    tracing::info!(running, "draining: finishing running tasks before exit");
    let deadline = tokio::time::Instant::now() + state.cfg.drain_timeout;
    while state.active.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let left = state.active.load(Ordering::SeqCst);
    if left > 0 {
        tracing::warn!(
            left,
            "drain timed out; the dispatcher will requeue these tasks"
        );
    }
    let conn = state
        .control
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(conn) = conn {
        conn.close(0u32.into(), b"worker shutting down");
    }
}

async fn find_dispatcher(state: &State) -> Result<SocketAddr, WorkerError> {
    if let Some(addr) = state.cfg.dispatcher {
        return Ok(addr);
    }
    let key = state.cfg.dispatcher_key;
    let ifaces = state.cfg.mdns.clone();
    let timeout = state.cfg.discover_timeout;
    let found = tokio::task::spawn_blocking(move || {
        fabric_net::mdns::discover(Some(&key), &ifaces, timeout)
    })
    .await
    .map_err(|e| WorkerError::Unreachable {
        addr: None,
        source: NetError::Mdns(e.to_string()),
    })?;
    let (addr, _) = found.map_err(|source| WorkerError::Unreachable { addr: None, source })?;
    tracing::info!(%addr, "found the dispatcher on mDNS");
    Ok(addr)
}

async fn request(
    conn: &Connection,
    req: &Request,
    max: usize,
) -> Result<(SendStream, RecvStream, Response), NetError> {
    let (mut send, mut recv) = conn.open_bi().await?;
    framed::send(&mut send, req).await?;
    let resp: Response = framed::expect(&mut recv, max).await?;
    Ok((send, recv, resp))
}

/// One connection's life: connect, join, register, serve until it drops.
async fn session(state: &Arc<State>, joined: &mut bool) -> Result<(), WorkerError> {
    let addr = find_dispatcher(state).await?;
    let unreachable = |source| WorkerError::Unreachable {
        addr: Some(addr),
        source,
    };
    let connected = fabric_net::connect(
        &state.identity,
        vec![state.cfg.dispatcher_key],
        addr,
        &state.cfg.net,
    )
    .await;
    let conn = match connected {
        Ok(c) => c,
        // A failed handshake (wrong key, wrong protocol) at an address the
        // operator gave will not fix itself. One found on mDNS may be a
        // stale or spoofed announcement: keep looking.
        Err(NetError::Connection(quinn::ConnectionError::TransportError(e)))
            if state.cfg.dispatcher.is_some() =>
        {
            return Err(WorkerError::Handshake {
                addr,
                reason: e.to_string(),
            });
        }
        Err(e) => return Err(unreachable(e)),
    };
    let max = state.cfg.net.max_frame;
    if !*joined && let Some(secret) = state.cfg.join_secret {
        let (_, _, resp) = request(
            &conn,
            &Request::Join {
                secret: secret.to_vec(),
            },
            max,
        )
        .await
        .map_err(unreachable)?;
        match resp {
            Response::Joined => {
                tracing::info!(%addr, "joined the cluster");
                *joined = true;
            }
            Response::Error(e) => return Err(WorkerError::Join(e.message)),
            other => return Err(WorkerError::Join(format!("unexpected answer {other:?}"))),
        }
    }
    let info = WorkerInfo {
        name: state.cfg.name.clone(),
        slots: state.cfg.slots,
        memory_bytes: state.cfg.memory_bytes,
        labels: state.cfg.labels.clone(),
        wasm: true,
        commands: Vec::new(),
    };
    let (mut control, _control_recv, resp) = request(&conn, &Request::Register(info), max)
        .await
        .map_err(unreachable)?;
    let heartbeat_ms = match resp {
        Response::Registered { heartbeat_ms } => heartbeat_ms,
        Response::Error(e) if e.code == ErrorCode::Unauthorized => {
            return Err(WorkerError::Refused(format!(
                "{} (start the worker with --join TOKEN)",
                e.message
            )));
        }
        Response::Error(e) => return Err(WorkerError::Refused(e.message)),
        other => return Err(WorkerError::Refused(format!("unexpected answer {other:?}"))),
    };
    *state.control.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
    state.registered.store(true, Ordering::SeqCst);
    tracing::info!(%addr, dispatcher = %state.cfg.dispatcher_key.short(), "worker registered");
    let heartbeats = {
        let state = state.clone();
        async move {
            let mut interval = tokio::time::interval(Duration::from_millis(heartbeat_ms.max(10)));
            let mut told_draining = false;
            loop {
                interval.tick().await;
                if state.draining.load(Ordering::SeqCst) && !told_draining {
                    framed::send(&mut control, &WorkerMsg::Draining).await?;
                    told_draining = true;
                }
                let running = state.active.load(Ordering::SeqCst);
                framed::send(&mut control, &WorkerMsg::Heartbeat { running }).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), NetError>(())
        }
    };
    let accept = {
        let state = state.clone();
        let conn = conn.clone();
        async move {
            loop {
                let (send, recv) = conn.accept_bi().await?;
                let state = state.clone();
                let conn = conn.clone();
                tokio::spawn(async move {
                    if let Err(e) = assignment(&state, &conn, send, recv).await {
                        tracing::warn!(error = %e, "assignment stream failed");
                    }
                });
            }
            #[allow(unreachable_code)]
            Ok::<(), NetError>(())
        }
    };
    let result = tokio::select! {
        r = heartbeats => r,
        r = accept => r,
    };
    result.map_err(unreachable)
}

async fn assignment(
    state: &Arc<State>,
    conn: &Connection,
    mut send: SendStream,
    mut recv: RecvStream,
) -> Result<(), NetError> {
    let max = state.cfg.net.max_frame;
    let assign: Assign = framed::expect(&mut recv, max).await?;
    let (signed, input) = match assign {
        Assign::Cancel { id, attempt } => {
            // Both maps under the `running` lock, so a cancel cannot slip
            // between a task's registration and its check.
            let mut running = state.running.lock().unwrap_or_else(|p| p.into_inner());
            match running.remove(&(id, attempt)) {
                Some(tx) => {
                    tracing::info!(task = %id, attempt, "cancelling on request");
                    let _ = tx.send(());
                }
                None => {
                    tracing::debug!(task = %id, attempt, "cancel before the task started here");
                    let mut cancelled = state.cancelled.lock().unwrap_or_else(|p| p.into_inner());
                    if cancelled.len() > 10_000 {
                        cancelled.clear();
                    }
                    cancelled.insert((id, attempt));
                }
            }
            return Ok(());
        }
        Assign::Run { manifest, input } => (manifest, input),
    };
    // Counted from arrival until the ack, so a drain waits for assignments
    // still fetching their module and for the report too.
    state.active.fetch_add(1, Ordering::SeqCst);
    let _active = ActiveGuard(state.clone());
    if state.draining.load(Ordering::SeqCst) {
        return refuse(&mut send, &mut recv, "worker is draining".into(), max).await;
    }
    let verified = {
        let mut replay = state.replay.lock().unwrap_or_else(|p| p.into_inner());
        verify_manifest(
            &signed,
            &input,
            &[state.cfg.dispatcher_key.0],
            now_ms(),
            &mut replay,
        )
    };
    let manifest = match verified {
        Ok(m) => m,
        Err(reason) => {
            tracing::warn!(%reason, "refusing an assignment");
            return refuse(&mut send, &mut recv, reason, max).await;
        }
    };
    let module = match module_for(state, conn, &manifest).await {
        Ok(m) => m,
        Err(reason) => {
            tracing::warn!(task = %manifest.task_id, %reason, "refusing an assignment");
            return refuse(&mut send, &mut recv, reason, max).await;
        }
    };
    let outcome = execute(state, &manifest, module, input, &mut send).await;
    tracing::debug!(task = %manifest.task_id, attempt = manifest.attempt, status = %outcome.status, "task finished");
    framed::send(&mut send, &Report::Done(Box::new(outcome))).await?;
    match tokio::time::timeout(
        Duration::from_secs(30),
        framed::expect::<Ack>(&mut recv, max),
    )
    .await
    {
        Ok(Ok(ack)) => {
            if !ack.recorded {
                tracing::debug!(task = %manifest.task_id, "result acknowledged but not recorded (stale or retried)");
            }
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(NetError::Timeout(
            Duration::from_secs(30),
            "waiting for the result ack",
        )),
    }
}

struct ActiveGuard(Arc<State>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn refuse(
    send: &mut SendStream,
    recv: &mut RecvStream,
    reason: String,
    max: usize,
) -> Result<(), NetError> {
    framed::send(send, &Report::Refused { reason }).await?;
    let _ = tokio::time::timeout(Duration::from_secs(10), framed::expect::<Ack>(recv, max)).await;
    Ok(())
}

async fn module_for(
    state: &Arc<State>,
    conn: &Connection,
    m: &Manifest,
) -> Result<PreparedModule, String> {
    let TaskKind::Wasm { module: sha } = &m.kind else {
        return Err("this worker runs wasm tasks only".into());
    };
    if let Some(p) = state.runtime.cached(sha) {
        return Ok(p);
    }
    let cell = state
        .modules
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(*sha)
        .or_default()
        .clone();
    cell.get_or_try_init(|| async {
        let max = state.cfg.net.max_frame;
        let (_, _, resp) = request(conn, &Request::GetBlob { sha: *sha }, max)
            .await
            .map_err(|e| format!("cannot fetch module {sha}: {e}"))?;
        let bytes = match resp {
            Response::BlobBytes { bytes } => bytes,
            Response::Error(e) => return Err(format!("cannot fetch module {sha}: {}", e.message)),
            other => return Err(format!("unexpected answer to a module fetch: {other:?}")),
        };
        m.check_module(&bytes)
            .map_err(|e| format!("manifest rejected: {e}"))?;
        let runtime = state.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.prepare(&bytes))
            .await
            .map_err(|e| format!("module compilation panicked: {e}"))?
            .map_err(|e| format!("module {sha} does not load: {e}"))
    })
    .await
    .cloned()
}

async fn execute(
    state: &Arc<State>,
    m: &Manifest,
    module: PreparedModule,
    input: Vec<u8>,
    send: &mut SendStream,
) -> TaskOutcome {
    let (cancel_tx, mut cancel_rx) = oneshot::channel();
    let key = (m.task_id, m.attempt);
    {
        let mut running = state.running.lock().unwrap_or_else(|p| p.into_inner());
        let cancelled_early = state
            .cancelled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if cancelled_early {
            let _ = cancel_tx.send(());
        } else {
            running.insert(key, cancel_tx);
        }
    }
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let task = WasmTask {
        program_name: String::new(),
        args: m.args.clone(),
        env: m.env.clone(),
        stdin: input,
        limits: m.limits,
        scratch_dir: false,
    };
    let runtime = state.runtime.clone();
    let run = async move {
        runtime
            .run(&module, task, move |e| {
                let _ = ev_tx.send(e);
            })
            .await
    };
    tokio::pin!(run);
    let mut stream_ok = true;
    let outcome = loop {
        tokio::select! {
            outcome = &mut run => break outcome,
            Some(e) = ev_rx.recv() => {
                if stream_ok && framed::send(send, &Report::Event(e)).await.is_err() {
                    stream_ok = false;
                }
            }
            Ok(()) = &mut cancel_rx => {
                let mut o = TaskOutcome::rejected("cancelled by the dispatcher");
                o.status = TaskStatus::Cancelled;
                break o;
            }
        }
    };
    while let Ok(e) = ev_rx.try_recv() {
        if stream_ok && framed::send(send, &Report::Event(e)).await.is_err() {
            stream_ok = false;
        }
    }
    state
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&key);
    outcome
}
