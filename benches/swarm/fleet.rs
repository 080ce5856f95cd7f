//! The swarm's workers: each connects with its own key, registers,
//! heartbeats and serves assignment streams as `fabric worker` does, with
//! nothing executed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fabric_net::framed::{self, FramedRecv, FramedSend};
use fabric_net::{Identity, NetConfig, PublicKey};
use fabric_proto::wire::{Ack, Assign, Report, Request, Response, WorkerInfo, WorkerMsg};
use fabric_proto::{TaskOutcome, TaskStatus};
use fabric_worker::verify::{ReplayGuard, verify_manifest};

use super::SLOTS;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the swarm counts across its workers.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) registered: AtomicU64,
    pub(crate) heartbeats: AtomicU64,
    pub(crate) runs: AtomicU64,
    pub(crate) failures: AtomicU64,
    /// Workers whose connection the dispatcher closed (declared dead).
    pub(crate) dropped: AtomicU64,
}

/// One worker: connect, register, heartbeat and serve assignments until
/// the connection ends.
pub(crate) async fn worker(
    id: Identity,
    name: String,
    addr: SocketAddr,
    dispatcher: PublicKey,
    counters: Arc<Counters>,
) -> Result<(), String> {
    let net = NetConfig::default();
    let max = net.max_frame;
    let (_endpoint, conn) = fabric_net::connect_endpoint(&id, vec![dispatcher], addr, &net)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut control, mut answer) = framed::open(&conn, max).await.map_err(|e| e.to_string())?;
    let info = WorkerInfo {
        name,
        slots: SLOTS,
        memory_bytes: 8 << 30,
        labels: Vec::new(),
        wasm: true,
        commands: Vec::new(),
        running: Vec::new(),
    };
    control
        .send(&Request::Register(info))
        .await
        .map_err(|e| e.to_string())?;
    let period = match answer
        .expect::<Response>()
        .await
        .map_err(|e| e.to_string())?
    {
        Response::Registered { heartbeat_ms, .. } => Duration::from_millis(heartbeat_ms.max(10)),
        other => return Err(format!("registration refused: {other:?}")),
    };
    counters.registered.fetch_add(1, Ordering::Relaxed);
    let running = Arc::new(AtomicU64::new(0));
    let beats = {
        let counters = counters.clone();
        let running = running.clone();
        async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let running = running.load(Ordering::Relaxed) as u32;
                control.send(&WorkerMsg::Heartbeat { running }).await?;
                counters.heartbeats.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let replay = Arc::new(std::sync::Mutex::new(ReplayGuard::default()));
    let serve = async {
        loop {
            let (send, recv) = framed::accept(&conn, max).await?;
            let (counters, running, replay) = (counters.clone(), running.clone(), replay.clone());
            tokio::spawn(async move {
                running.fetch_add(1, Ordering::Relaxed);
                let ok = assignment(send, recv, dispatcher, &replay).await;
                running.fetch_sub(1, Ordering::Relaxed);
                let c = if ok {
                    &counters.runs
                } else {
                    &counters.failures
                };
                c.fetch_add(1, Ordering::Relaxed);
            });
        }
    };
    let ended: Result<(), fabric_net::StreamError> = tokio::select! {
        r = beats => r,
        r = serve => r,
    };
    ended.map_err(|e| e.to_string())
}

/// One assignment stream: the manifest checked as a worker checks it, a
/// success reported, the ack awaited. Whether it was recorded.
async fn assignment(
    mut send: FramedSend,
    mut recv: FramedRecv,
    dispatcher: PublicKey,
    replay: &std::sync::Mutex<ReplayGuard>,
) -> bool {
    let Ok(Assign::Run {
        manifest, input, ..
    }) = recv.expect::<Assign>().await
    else {
        return false;
    };
    let verified = {
        let mut replay = replay.lock().unwrap_or_else(|p| p.into_inner());
        verify_manifest(
            &manifest,
            Some(&input),
            &[dispatcher.0],
            now_ms(),
            &mut replay,
        )
    };
    let outcome = match verified {
        Ok(_) => TaskOutcome {
            exit_code: Some(0),
            ..TaskOutcome::ended(TaskStatus::Succeeded, "swarm: not executed")
        },
        Err(refusal) => {
            let _ = send
                .send(&Report::Refused {
                    reason: refusal.to_string(),
                })
                .await;
            return false;
        }
    };
    if send.send(&Report::Done(Box::new(outcome))).await.is_err() {
        return false;
    }
    matches!(recv.expect::<Ack>().await, Ok(Ack { recorded: true, .. }))
}
