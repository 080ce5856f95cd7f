//! One connection's life: find the dispatcher, connect pinning its key,
//! join once, register, then heartbeat and serve assignment streams until
//! the connection drops.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fabric_net::framed::{self, FramedSend};
use fabric_net::{EndpointError, PublicKey, StreamError};
use fabric_proto::wire::{ErrorCode, Request, Response, WorkerInfo, WorkerMsg};
use quinn::Connection;
use tracing::Instrument as _;

use crate::{State, WorkerError, assignment};

/// How long one address found on mDNS gets to answer before the next is
/// tried.
const CANDIDATE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the one configured address gets to answer a handshake: a
/// dispatcher that is down never answers (UDP), and the operator should
/// hear so in seconds, not after the QUIC idle timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the dispatcher may be: the configured address, or every address
/// of the first mDNS answer carrying the pinned key.
async fn find_dispatcher(state: &State) -> Result<Vec<SocketAddr>, WorkerError> {
    if let Some(addr) = state.cfg.dispatcher {
        return Ok(vec![addr]);
    }
    let key = state.cfg.dispatcher_key;
    let ifaces = state.cfg.mdns.clone();
    let timeout = state.cfg.discover_timeout;
    let found = tokio::task::spawn_blocking(move || {
        fabric_net::mdns::discover(Some(&key), &ifaces, timeout)
    })
    .await
    .map_err(|e| {
        WorkerError::NotFound(fabric_net::MdnsError::Daemon(format!(
            "browse task failed: {e}"
        )))
    })?;
    let (addrs, _) = found.map_err(WorkerError::NotFound)?;
    tracing::info!(?addrs, "found the dispatcher on mDNS");
    Ok(addrs)
}

/// Connects to the first candidate that answers, logging each one tried
/// and why it failed. Several candidates (from mDNS) get
/// [`CANDIDATE_TIMEOUT`] each; a single one [`CONNECT_TIMEOUT`].
async fn connect_any(
    state: &State,
    candidates: &[(SocketAddr, PublicKey)],
) -> Result<(SocketAddr, PublicKey, Connection), WorkerError> {
    let mut last = None;
    for &(addr, key) in candidates {
        tracing::info!(%addr, "trying the dispatcher at {addr}");
        let after = if candidates.len() > 1 && state.cfg.peers.is_empty() {
            CANDIDATE_TIMEOUT
        } else {
            CONNECT_TIMEOUT
        };
        let tried = tokio::time::timeout(after, connect(state, addr, key))
            .await
            .unwrap_or(Err(WorkerError::NoAnswer { addr, after }));
        match tried {
            Ok(conn) => return Ok((addr, key, conn)),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                // The caller tells the operator (a notice, and a warning
                // when a connection was lost).
                tracing::info!(%addr, error = %e, "the dispatcher is not reachable at {addr}: {e}");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        WorkerError::NotFound(fabric_net::MdnsError::Daemon(
            "the dispatcher announced no address".into(),
        ))
    }))
}

/// Sends one request on a new stream and reads the first answer; the
/// sending half stays open (a registration's becomes the control stream).
async fn request(
    conn: &Connection,
    req: &Request,
    max: usize,
) -> Result<(FramedSend, Response), StreamError> {
    let (mut send, mut recv) = framed::open(conn, max).await?;
    send.send(req).await?;
    let resp = recv.expect().await?;
    Ok((send, resp))
}

/// Runs one session; `joined` is set once the join secret was accepted, so
/// a reconnect does not prove it again.
pub(crate) async fn session(state: &Arc<State>, joined: &mut bool) -> Result<(), WorkerError> {
    let mut candidates = Vec::new();
    // The leader another dispatcher of the group named, first.
    let hint = state
        .leader_hint
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some((addr, key)) = hint
        && let Some(a) = tokio::net::lookup_host(&addr)
            .await
            .ok()
            .and_then(|mut a| a.next())
    {
        candidates.push((a, key));
    }
    match find_dispatcher(state).await {
        Ok(found) => candidates.extend(found.into_iter().map(|a| (a, state.cfg.dispatcher_key))),
        Err(e) if state.cfg.peers.is_empty() => return Err(e),
        Err(_) => {}
    }
    candidates.extend(state.cfg.peers.iter().copied());
    // The dispatcher of the session that just ended, last: it went away.
    let gone = state.gone.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(gone) = gone
        && candidates.len() > 1
        && let Some(pos) = candidates.iter().position(|c| c.0 == gone)
    {
        let last = candidates.remove(pos);
        candidates.push(last);
    }
    let (addr, key, conn) = connect_any(state, &candidates).await?;
    *state.serving_key.lock().unwrap_or_else(|p| p.into_inner()) = key;
    let span = tracing::info_span!("dispatcher", %addr);
    let served = serve(state, addr, conn, joined).instrument(span).await;
    if matches!(served, Err(WorkerError::Lost { .. })) {
        *state.gone.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
    }
    served
}

/// The session with the dispatcher at `addr`, inside its span.
async fn serve(
    state: &Arc<State>,
    addr: SocketAddr,
    conn: Connection,
    joined: &mut bool,
) -> Result<(), WorkerError> {
    let lost = |source| WorkerError::Lost { addr, source };
    let max = state.cfg.net.max_frame;
    if !*joined && let Some(secret) = state.cfg.join_secret {
        let join = Request::Join {
            secret: secret.to_vec(),
        };
        match request(&conn, &join, max).await.map_err(lost)?.1 {
            Response::Joined => {
                tracing::info!("joined the cluster");
                *joined = true;
            }
            Response::Error(e) if e.code == ErrorCode::NotLeader => {
                return Err(not_leader(addr, e));
            }
            Response::Error(e) => return Err(WorkerError::Join(e.message)),
            other => return Err(WorkerError::Join(format!("unexpected answer {other:?}"))),
        }
    }
    let info = WorkerInfo {
        name: state.cfg.name.clone(),
        slots: state.cfg.slots,
        memory_bytes: state.cfg.memory_bytes,
        labels: labels(&state.cfg),
        wasm: true,
        commands: state
            .native
            .as_ref()
            .map(|(allow, _)| allow.names())
            .unwrap_or_default(),
        // Runs from an earlier session, and results not reported yet:
        // adopted or to be cancelled.
        running: {
            let mut r = state.slots.running_keys();
            r.extend(state.unreported.keys());
            r.sort();
            r.dedup();
            r
        },
    };
    let reported = info.running.len();
    let (control, resp) = request(&conn, &Request::Register(info), max)
        .await
        .map_err(lost)?;
    let (heartbeat_ms, stray) = match resp {
        Response::Registered {
            heartbeat_ms,
            cancel,
        } => (heartbeat_ms, cancel),
        Response::Error(e) if e.code == ErrorCode::NotLeader => return Err(not_leader(addr, e)),
        Response::Error(e) if e.code == ErrorCode::Unauthorized => {
            return Err(WorkerError::Refused(format!(
                "{} (start the worker with --join TOKEN)",
                e.message
            )));
        }
        Response::Error(e) => return Err(WorkerError::Refused(e.message)),
        other => return Err(WorkerError::Refused(format!("unexpected answer {other:?}"))),
    };
    let adopted_runs = reported.saturating_sub(stray.len());
    for run in stray {
        tracing::info!(task = %run.0, attempt = run.1, "cancelling a run the dispatcher no longer leases here");
        state.slots.cancel(run);
    }
    state.registered(conn.clone());
    tracing::info!(dispatcher = %state.serving_key().short(), "worker registered");
    state.cfg.notices.send(crate::Notice::Joined {
        dispatcher: conn.remote_address(),
        adopted: adopted_runs,
    });
    // Alongside the heartbeats, so a slow flush cannot get this worker
    // declared dead.
    tokio::spawn({
        let state = state.clone();
        let conn = conn.clone();
        async move { crate::late::flush(&state, &conn).await }
    });
    let result = tokio::select! {
        r = heartbeats(state, control, Duration::from_millis(heartbeat_ms.max(10))) => r,
        r = accept(state, &conn) => r,
    };
    result.map_err(lost)
}

async fn connect(
    state: &State,
    addr: SocketAddr,
    key: PublicKey,
) -> Result<Connection, WorkerError> {
    let connected = fabric_net::connect(&state.identity, vec![key], addr, &state.cfg.net).await;
    match connected {
        Ok(c) => Ok(c),
        // A failed handshake (wrong key, wrong protocol) at an address the
        // operator gave will not fix itself. One found on mDNS may be a
        // stale or spoofed announcement: keep looking.
        Err(EndpointError::Handshake {
            source: quinn::ConnectionError::TransportError(e),
            ..
        }) if state.cfg.dispatcher.is_some() && state.cfg.peers.is_empty() => {
            Err(WorkerError::Handshake {
                addr,
                reason: e.to_string(),
            })
        }
        Err(source) => Err(WorkerError::Unreachable { addr, source }),
    }
}

/// Heartbeats on the control stream. A drain is told at once, before the
/// worker refuses anything: only after `Draining` went out are new
/// assignments refused (those already on their way still run).
async fn heartbeats(
    state: &State,
    mut control: FramedSend,
    period: Duration,
) -> Result<(), StreamError> {
    let mut interval = tokio::time::interval(period);
    let mut told_draining = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = state.slots.drain_asked(), if !told_draining => {}
        }
        if state.slots.drain_requested() && !told_draining {
            control.send(&WorkerMsg::Draining).await?;
            told_draining = true;
            state.slots.refuse_new();
            tracing::info!("told the dispatcher this worker drains");
        }
        let running = state.slots.active();
        control.send(&WorkerMsg::Heartbeat { running }).await?;
    }
}

/// Serves every assignment stream the dispatcher opens, each in its own
/// task.
async fn accept(state: &Arc<State>, conn: &Connection) -> Result<(), StreamError> {
    let max = state.cfg.net.max_frame;
    loop {
        let (send, recv) = framed::accept(conn, max).await?;
        let state = state.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = assignment::serve(&state, &conn, send, recv).await {
                tracing::warn!(error = %e, "assignment stream failed");
            }
        });
    }
}

/// The worker's labels, and `exec-in-work` when its native tasks may run
/// what they write, so `fabric workers` shows which do.
fn labels(cfg: &crate::WorkerConfig) -> Vec<String> {
    let mut labels = cfg.labels.clone();
    let exec = crate::NativeConfig::EXEC_LABEL;
    if cfg.native.as_ref().is_some_and(|n| n.exec_in_work) && !labels.iter().any(|l| l == exec) {
        labels.push(exec.to_owned());
    }
    labels
}

/// A follower's answer: where the leader is (its key is the member's word
/// for it, over a connection pinned to the member's key).
fn not_leader(addr: SocketAddr, e: fabric_proto::wire::ErrorBody) -> WorkerError {
    WorkerError::NotLeader {
        addr,
        leader: e
            .leader
            .and_then(|l| Some((l.addr, PublicKey::from_bytes(&l.key)?))),
    }
}
