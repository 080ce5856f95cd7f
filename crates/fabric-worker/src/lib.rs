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
//!
//! | room | holds |
//! | --- | --- |
//! | [`config`] | [`WorkerConfig`], [`WorkerError`] |
//! | `session` | connect, join, register, heartbeats, accepting assignment streams |
//! | `assignment` | one assignment: cancel, or verify → module → execute → report → ack |
//! | [`verify`] | manifest checks and the replay guard; [`Refusal`] |
//! | `inputs` | large inputs fetched by digest, one piece per stream, checked |
//! | `module_cache` | modules fetched by digest once and kept compiled |
//! | `execute` | one run in the sandbox, events streamed, cancel honoured |
//! | `slots` | assignments in flight, cancel handles, early cancels, drain |

mod assignment;
pub mod config;
mod execute;
mod inputs;
mod late;
mod module_cache;
mod native;
mod notice;
mod session;
mod slots;
mod staged;
pub mod verify;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabric_net::{Identity, IdentityError, PublicKey};
use fabric_sandbox::{WasmRuntime, WasmRuntimeConfig};
use quinn::Connection;

pub use config::{NativeConfig, WorkerConfig, WorkerError};
use module_cache::ModuleCache;
pub use notice::{Notice, Notices};
use slots::Slots;
pub use verify::Refusal;
use verify::ReplayGuard;

/// What a worker's sessions and assignments share.
struct State {
    cfg: WorkerConfig,
    identity: Identity,
    modules: ModuleCache,
    /// The allow-list and the runner, when native commands are on.
    native: Option<(fabric_native::AllowList, fabric_native::NativeRunner)>,
    /// Native tasks' staged files, fetched once.
    files: staged::FileCache,
    replay: Mutex<ReplayGuard>,
    slots: Arc<Slots>,
    /// The current session's connection, closed at the end of a drain.
    control: Mutex<Option<Connection>>,
    /// Set when a session registered (resets the reconnect count).
    registered: std::sync::atomic::AtomicBool,
    /// Outcomes whose report could not be sent yet (bounded).
    unreported: late::Unreported,
    /// The leader a dispatcher of the group named, tried first next time.
    leader_hint: Mutex<Option<(String, PublicKey)>>,
    /// The key of the dispatcher this session is with: its manifests are
    /// signed with it.
    serving_key: Mutex<PublicKey>,
    /// The dispatcher of a session that was lost: tried last next time.
    gone: Mutex<Option<std::net::SocketAddr>>,
}

/// Keep-alives and idle timeout with a group of dispatchers.
const GROUP_KEEP_ALIVE: Duration = Duration::from_millis(750);
const GROUP_IDLE_TIMEOUT: Duration = Duration::from_secs(3);

impl State {
    /// The key the current dispatcher signs manifests with.
    fn serving_key(&self) -> PublicKey {
        *self.serving_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn registered(&self, conn: Connection) {
        *self.control.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
        self.registered
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The current session's connection, if registered.
    fn connection(&self) -> Option<Connection> {
        self.control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn take_registered(&self) -> bool {
        self.registered
            .swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Runs a worker until `shutdown` resolves (then drains) or a fatal error.
pub async fn run(
    mut cfg: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), WorkerError> {
    if !cfg.peers.is_empty() {
        // In a group a leader that dies must be noticed in seconds (a new
        // one is elected in about as long), not at the 15 s idle timeout.
        cfg.net.keep_alive = cfg.net.keep_alive.min(GROUP_KEEP_ALIVE);
        cfg.net.idle_timeout = cfg.net.idle_timeout.min(GROUP_IDLE_TIMEOUT);
    }
    // The data dir holds the key and compiled modules: owner-only.
    fabric_net::create_private_dir(&cfg.data_dir).map_err(|source| IdentityError::Io {
        path: cfg.data_dir.clone(),
        source,
    })?;
    let identity = Identity::load_or_create(&cfg.data_dir.join("node.key"))?;
    let runtime = WasmRuntime::new(WasmRuntimeConfig {
        max_concurrent: cfg.slots.max(1),
        max_memory_bytes: cfg.memory_bytes.min(4 << 30),
        cache_dir: Some(cfg.data_dir.join("modules")),
        ..WasmRuntimeConfig::default()
    })?;
    let native = match &cfg.native {
        None => None,
        Some(n) => {
            // Outside the private data dir: the tasks' uids must reach
            // their own scratch dirs (and nothing else there).
            let work_root = std::env::temp_dir().join(format!(
                "fabric-native-{}",
                identity.public().to_string().get(..16).unwrap_or("worker")
            ));
            let runner = fabric_native::NativeRunner::new(fabric_native::RunnerConfig {
                helper: n.helper.clone(),
                work_root: work_root.clone(),
                network: n.network,
                exec_in_work: n.exec_in_work,
                max_disk_bytes: n.max_task_disk,
            })
            .map_err(|source| WorkerError::Native {
                path: work_root,
                source,
            })?;
            let layers = runner.layers().describe();
            tracing::info!(allowed = ?n.allow.names(), %layers, "native commands on");
            cfg.notices.send(Notice::Native {
                allowed: n.allow.names(),
                layers,
            });
            Some((n.allow.clone(), runner))
        }
    };
    let state = Arc::new(State {
        identity,
        native,
        files: staged::FileCache::new(cfg.data_dir.join("files")),
        modules: ModuleCache::new(Arc::new(runtime), cfg.net.max_frame),
        replay: Mutex::new(ReplayGuard::default()),
        slots: Arc::new(Slots::default()),
        control: Mutex::new(None),
        registered: std::sync::atomic::AtomicBool::new(false),
        unreported: late::Unreported::default(),
        leader_hint: Mutex::new(None),
        gone: Mutex::new(None),
        serving_key: Mutex::new(cfg.dispatcher_key),
        cfg,
    });
    tracing::info!(key = %state.identity.public(), slots = state.cfg.slots, "worker starting");
    state.cfg.notices.send(Notice::Started {
        name: state.cfg.name.clone(),
        key: state.identity.public().to_string(),
        slots: state.cfg.slots,
        memory_bytes: state.cfg.memory_bytes,
    });
    tokio::pin!(shutdown);
    let mut joined = state.cfg.join_secret.is_none();
    let mut failures = 0u32;
    state.cfg.notices.send(Notice::Connecting {
        dispatcher: state.cfg.dispatcher,
    });
    loop {
        let session = session::session(&state, &mut joined);
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
                stop_native(&state).await;
                return Ok(());
            }
        };
        if state.take_registered() {
            failures = 0;
        }
        let conn = state
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let closed_dead = conn.as_ref().is_some_and(|c| {
            matches!(
                c.close_reason(),
                Some(quinn::ConnectionError::ApplicationClosed(close))
                    if close.error_code == quinn::VarInt::from_u32(config::DECLARED_DEAD)
            )
        });
        if closed_dead || result.as_ref().is_err_and(WorkerError::declared_dead) {
            let n = state.slots.cancel_all();
            tracing::warn!(
                cancelled = n,
                "the dispatcher declared this worker dead; stopped its runs, registering afresh"
            );
        }
        match result {
            Ok(()) => {}
            Err(e) if e.is_fatal() => return Err(e),
            // Sent on to the leader: at once, and not a failure.
            Err(WorkerError::NotLeader { leader, addr }) => {
                if leader.is_none() {
                    // It names nobody (it lost the majority, or no leader
                    // is elected yet): the others are tried first.
                    *state.gone.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
                }
                tracing::info!(leader = ?leader.as_ref().map(|l| &l.0), "following the leader of the dispatchers");
                let wait = if leader.is_some() {
                    Duration::ZERO
                } else {
                    Duration::from_millis(300)
                };
                *state.leader_hint.lock().unwrap_or_else(|p| p.into_inner()) = leader;
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => {
                failures += 1;
                if state.cfg.max_reconnects.is_some_and(|m| failures > m) {
                    return Err(e);
                }
                // Said once per outage; the notices say every retry.
                if failures == 1 {
                    tracing::warn!(error = %e, "{e}; trying again");
                } else {
                    tracing::debug!(error = %e, failures, "{e}; trying again");
                }
                let retry_in = backoff(failures);
                state.cfg.notices.send(Notice::Unreachable {
                    reason: e.to_string(),
                    retry_in,
                });
            }
        }
        let backoff = backoff(failures);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut shutdown => {
                drain(&state).await;
                stop_native(&state).await;
                return Ok(());
            }
        }
    }
}

/// Native runs the drain did not wait for are killed, and their dirs and
/// groups removed, before the worker returns.
async fn stop_native(state: &State) {
    if let Some((_, runner)) = &state.native {
        runner.stop().await;
    }
}

/// How long to wait before the next connection attempt.
/// Short and capped at 2 s, so a worker is back within about 3 s of its
/// dispatcher (a connection attempt waits up to 2 s for an answer, and
/// QUIC resends its hello meanwhile).
fn backoff(failures: u32) -> Duration {
    Duration::from_millis((200u64 << failures.min(4)).min(2_000))
}

/// How long a drain waits for the dispatcher to be told before it refuses
/// new work anyway.
const TELL_DRAIN: Duration = Duration::from_secs(2);

/// Refuses new work, waits (up to the drain timeout) for what is in
/// flight, then closes the connection.
async fn drain(state: &State) {
    let running = state.slots.request_drain();
    tracing::info!(running, "draining: finishing running tasks before exit");
    state.cfg.notices.send(Notice::Draining { running });
    // The session tells the dispatcher, then refuses new work; without a
    // session there is nobody to tell.
    if state.connection().is_none()
        || tokio::time::timeout(TELL_DRAIN, state.slots.refusing())
            .await
            .is_err()
    {
        state.slots.refuse_new();
    }
    if tokio::time::timeout(state.cfg.drain_timeout, state.slots.idle())
        .await
        .is_err()
    {
        tracing::warn!(
            left = state.slots.active(),
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
