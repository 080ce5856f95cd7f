//! A worker that stops heartbeating is declared dead on the clock, and its
//! task runs again elsewhere as a new attempt.

use std::time::Duration;

use fabric_net::Identity;
use fabric_net::framed::{self, FramedSend};
use fabric_proto::wire::{Assign, Request, Response, WorkerInfo};
use fabric_proto::{Limits, TaskId, TaskState, TaskStatus, WorkerKey};
use quinn::Connection;

use crate::harness::{Cluster, TRIVIAL_WAT, fast_heartbeats};

const MAX: usize = fabric_proto::DEFAULT_MAX_FRAME;

/// A worker played by the test: it joins, registers, takes assignments and
/// then never reports (and, unless told to beat, never heartbeats either).
struct SilentWorker {
    key: WorkerKey,
    conn: Connection,
    _control: Option<FramedSend>,
    _beats: Option<tokio::task::JoinHandle<()>>,
    drain: Option<tokio::sync::watch::Sender<bool>>,
}

impl SilentWorker {
    async fn register(c: &Cluster) -> Self {
        let me = Identity::generate().expect("key");
        let conn = c.connect_as(&me).await;
        let secret = c.token().secret.to_vec();
        let (mut s, mut r) = framed::open(&conn, MAX).await.expect("stream");
        s.send(&Request::Join { secret }).await.expect("join");
        assert!(matches!(r.expect().await, Ok(Response::Joined)));
        let info = WorkerInfo {
            name: "silent".into(),
            slots: 1,
            memory_bytes: 1 << 30,
            labels: Vec::new(),
            wasm: true,
            commands: Vec::new(),
            running: Vec::new(),
        };
        let (mut control, mut r) = framed::open(&conn, MAX).await.expect("stream");
        control
            .send(&Request::Register(info))
            .await
            .expect("register");
        assert!(matches!(r.expect().await, Ok(Response::Registered { .. })));
        Self {
            key: WorkerKey(me.public().to_bytes()),
            conn,
            _control: Some(control),
            _beats: None,
            drain: None,
        }
    }

    /// The same, but it heartbeats (every few real milliseconds).
    async fn beating(c: &Cluster) -> Self {
        let mut w = Self::register(c).await;
        let mut control = w._control.take().expect("control stream");
        let (drain, mut drained) = tokio::sync::watch::channel(false);
        w.drain = Some(drain);
        w._beats = Some(tokio::spawn(async move {
            let mut told = false;
            loop {
                let msg = if *drained.borrow_and_update() && !told {
                    told = true;
                    fabric_proto::wire::WorkerMsg::Draining
                } else {
                    fabric_proto::wire::WorkerMsg::Heartbeat { running: 1 }
                };
                if control.send(&msg).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        w
    }

    /// Tells the dispatcher (on the heartbeat stream) that it drains.
    fn start_draining(&self) {
        let _ = self.drain.as_ref().expect("a beating worker").send(true);
    }

    /// Reads the next assignment: its task and attempt, and the stream,
    /// which the caller keeps open (a closed stream is a lost attempt).
    async fn take(&self, c: &Cluster) -> (TaskId, u32, FramedSend) {
        let (send, mut recv) = framed::accept(&self.conn, MAX).await.expect("assignment");
        match recv.expect::<Assign>().await.expect("assign") {
            Assign::Run { manifest, .. } => {
                let m = manifest
                    .verify(&[c.dispatcher.public_key().0])
                    .expect("signed by the dispatcher");
                (m.task_id, m.attempt, send)
            }
            other => panic!("expected a run, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_worker_is_declared_dead_and_its_task_requeues_to_a_live_one() {
    // Heartbeats every 100 ms of the clock; three missed and a worker is dead.
    let mut c = Cluster::start(fast_heartbeats()).await;
    let silent = SilentWorker::register(&c).await;
    let module = c.module(TRIVIAL_WAT).await;
    let id = c.submit(module, Limits::default(), 0).await;
    let (task, attempt, _stream) = silent.take(&c).await;
    assert_eq!((task, attempt), (id, 1));
    let live = c.add_worker(1).await;
    // While the clock stands still the silent worker keeps its lease, even
    // though far more than three heartbeat periods pass in real time. (The
    // one fixed wait here: it shows something does not happen.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = c.client.status(id).await.expect("status");
    assert_eq!(held.state, TaskState::Running);
    assert_eq!(held.worker, Some(silent.key));
    // Past the deadline on the clock (the live worker heartbeating all
    // along): the silent one is dead, and the task runs on the live worker
    // as attempt 2.
    let step = Duration::from_millis(100);
    c.advance_keeping(Duration::from_millis(400), step, &[live.key])
        .await;
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::Succeeded), "{done:?}");
    assert_eq!(done.attempt, 2);
    assert_eq!(done.worker, Some(live.key));
    let workers = c.client.workers().await.expect("workers");
    // Listed a while as down, saying why (and taking no work).
    let dead = workers.iter().find(|w| w.key == silent.key);
    assert!(
        dead.is_some_and(|w| w.state == fabric_proto::wire::WorkerState::Down
            && w.why.as_deref() == Some("declared dead: missed 3 heartbeats")),
        "the dead worker is listed as down: {workers:?}"
    );
    // Its connection is closed, saying why: it must stop its runs and
    // register afresh (a heartbeat cannot bring it back).
    let closed = tokio::time::timeout(crate::harness::PATIENCE, silent.conn.closed())
        .await
        .expect("the dead worker's connection is closed");
    match closed {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, quinn::VarInt::from_u32(2), "{c:?}");
        }
        other => panic!("closed for another reason: {other}"),
    }
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_held_past_its_timeout_plus_grace_is_lost_even_while_its_worker_heartbeats() {
    let mut c = Cluster::start(fabric_dispatcher::SchedConfig {
        heartbeat_ms: 100,
        // Heartbeat deadlines out of the way: only the lease's matters.
        missed_heartbeats: 1_000_000,
        ..fabric_dispatcher::SchedConfig::default()
    })
    .await;
    let grace = fabric_dispatcher::SchedConfig::default().lease_grace_ms;
    let stuck = SilentWorker::beating(&c).await;
    let module = c.module(TRIVIAL_WAT).await;
    let limits = Limits {
        timeout_ms: 1_000,
        ..Limits::default()
    };
    let id = c.submit(module, limits, 0).await;
    let (task, attempt, _stream) = stuck.take(&c).await;
    assert_eq!((task, attempt), (id, 1));
    // It drains, so the rerun cannot land on it; its lease is untouched.
    stuck.start_draining();
    let live = c.add_worker(1).await;
    // Just short of timeout + grace on the clock: still leased.
    c.clock.advance(Duration::from_millis(1_000 + grace - 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = c.client.status(id).await.unwrap();
    assert_eq!(
        (held.state, held.worker),
        (TaskState::Running, Some(stuck.key))
    );
    // Past it: lost, and run again elsewhere.
    c.clock.advance(Duration::from_millis(2));
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::Succeeded), "{done:?}");
    assert_eq!(done.attempt, 2);
    assert_eq!(done.worker, Some(live.key));
    let workers = c.client.workers().await.unwrap();
    assert!(
        workers.iter().any(|w| w.key == stuck.key),
        "the heartbeating worker itself stays registered"
    );
    live.stop().await;
}
