//! Join tokens expire, get used up and are revoked; only admin clients
//! manage them; an operator can remove a worker; a worker's claims are
//! capped.

use std::time::Duration;

use fabric_client::Client;
use fabric_net::framed::{self, FramedSend};
use fabric_net::{Identity, JoinToken};
use fabric_proto::wire::{Assign, ErrorCode, Request, Response, WorkerInfo};
use fabric_proto::{Limits, TaskId, TaskState, TaskStatus, WorkerKey};
use quinn::Connection;

use crate::harness::{Cluster, PATIENCE, TRIVIAL_WAT, fast_heartbeats};

const MAX: usize = fabric_proto::DEFAULT_MAX_FRAME;

/// A peer played by the test, speaking the wire protocol by hand.
struct RawPeer {
    me: Identity,
    conn: Connection,
}

impl RawPeer {
    async fn connect(c: &Cluster, me: Identity) -> Self {
        let conn = c.connect_as(&me).await;
        Self { me, conn }
    }

    async fn fresh(c: &Cluster) -> Self {
        Self::connect(c, Identity::generate().expect("key")).await
    }

    fn key(&self) -> WorkerKey {
        WorkerKey(self.me.public().to_bytes())
    }

    /// Sends one request, returns the first answer.
    async fn ask(&self, req: &Request) -> Response {
        let (mut s, mut r) = framed::open(&self.conn, MAX).await.expect("stream");
        s.send(req).await.expect("send");
        r.expect().await.expect("answer")
    }

    /// Joins with `token`; `Ok` when joined, else the refusal's message.
    async fn join(&self, token: &JoinToken) -> Result<(), String> {
        let secret = token.secret.to_vec();
        match self.ask(&Request::Join { secret }).await {
            Response::Joined => Ok(()),
            Response::Error(e) => {
                assert_eq!(e.code, ErrorCode::Unauthorized, "{e}");
                Err(e.message)
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// Registers with `slots`; keeps the control stream open.
    async fn register(&self, slots: u32, memory_bytes: u64) -> Result<FramedSend, String> {
        let info = WorkerInfo {
            name: "raw".into(),
            slots,
            memory_bytes,
            labels: Vec::new(),
            wasm: true,
            commands: Vec::new(),
            running: Vec::new(),
        };
        let (mut control, mut r) = framed::open(&self.conn, MAX).await.expect("stream");
        control.send(&Request::Register(info)).await.expect("send");
        match r.expect().await.expect("answer") {
            Response::Registered { .. } => Ok(control),
            Response::Error(e) => Err(e.message),
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// Reads the next assignment's task and attempt; keeps its stream.
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

/// A client with the admin role.
async fn admin(c: &Cluster) -> Client {
    let me = Identity::generate().expect("key");
    c.dispatcher
        .add_admin(&me.public(), "admin")
        .await
        .expect("admin trusted");
    Client::connect(&me, c.dispatcher.public_key(), c.dispatcher.local_addr())
        .await
        .expect("admin connects")
}

fn token(text: &str) -> JoinToken {
    text.parse().expect("a join token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_token_is_refused_and_a_valid_one_accepted() {
    let c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let (text, info) = admin
        .create_token(Some(Duration::from_secs(60)), None)
        .await
        .expect("mint");
    assert_eq!(info.expires_ms, Some(info.created_ms + 60_000));
    let t = token(&text);
    RawPeer::fresh(&c)
        .await
        .join(&t)
        .await
        .expect("valid token joins");
    c.clock.advance(Duration::from_secs(60));
    let err = RawPeer::fresh(&c)
        .await
        .join(&t)
        .await
        .expect_err("expired");
    assert!(err.contains("expired"), "{err}");
    // Without --ttl the default is 24 h.
    let (_, info) = admin.create_token(None, None).await.expect("mint");
    assert_eq!(info.expires_ms, Some(info.created_ms + 24 * 3600 * 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_used_up_token_is_refused_but_its_worker_may_join_again() {
    let c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let (text, info) = admin.create_token(None, Some(1)).await.expect("mint");
    assert_eq!(info.uses_left, Some(1));
    let t = token(&text);
    let first = RawPeer::fresh(&c).await;
    first.join(&t).await.expect("first use");
    let err = RawPeer::fresh(&c)
        .await
        .join(&t)
        .await
        .expect_err("used up");
    assert!(err.contains("used up"), "{err}");
    // The worker that spent it restarts with the same --join: still trusted.
    first.join(&t).await.expect("a trusted key joins again");
    let listed = admin.list_tokens().await.expect("list");
    let mine = listed.iter().find(|x| x.id == info.id).expect("listed");
    assert_eq!(mine.uses_left, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_token_is_refused_and_listed_as_revoked() {
    let c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let (text, info) = admin.create_token(None, None).await.expect("mint");
    assert!(!text.contains(&info.id), "the id is not part of the secret");
    let revoked = admin.revoke_token(&info.id[..6]).await.expect("revoke");
    assert!(revoked.revoked);
    let err = RawPeer::fresh(&c)
        .await
        .join(&token(&text))
        .await
        .expect_err("revoked");
    assert!(err.contains("revoked"), "{err}");
    let listed = admin.list_tokens().await.expect("list");
    assert!(listed.iter().any(|x| x.id == info.id && x.revoked));
    let missing = admin.revoke_token("ffffffffffff0").await.expect_err("none");
    assert_eq!(missing.code(), Some(ErrorCode::NotFound), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_is_not_admin_cannot_manage_tokens_or_workers() {
    let c = Cluster::start(fast_heartbeats()).await;
    for err in [
        c.client.create_token(None, None).await.map(|_| ()),
        c.client.create_join_token().await.map(|_| ()),
        c.client.list_tokens().await.map(|_| ()),
        c.client.revoke_token("00").await.map(|_| ()),
        c.client.remove_worker("00").await.map(|_| ()),
    ] {
        let err = err.expect_err("not admin");
        assert_eq!(err.code(), Some(ErrorCode::Unauthorized), "{err}");
        assert!(err.to_string().contains("only the admin key"), "{err}");
    }
    // It still submits and reads.
    c.client.workers().await.expect("a client lists workers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_worker_is_disconnected_forgotten_and_its_task_requeued() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let raw = RawPeer::fresh(&c).await;
    raw.join(c.token()).await.expect("joins");
    let _control = raw.register(1, 1 << 30).await.expect("registers");
    let module = c.module(TRIVIAL_WAT).await;
    let id = c.submit(module, Limits::default(), 0).await;
    let (task, attempt, _stream) = raw.take(&c).await;
    assert_eq!((task, attempt), (id, 1));
    let (key, connected, requeued) = admin
        .remove_worker(&raw.key().to_string()[..10])
        .await
        .expect("remove");
    assert_eq!((key, connected, requeued), (raw.key(), true, 1));
    tokio::time::timeout(PATIENCE, raw.conn.closed())
        .await
        .expect("its connection is closed");
    let queued = c.client.status(id).await.expect("status");
    assert_eq!(queued.state, TaskState::Queued, "{queued:?}");
    // Its key is forgotten: registering again is refused.
    let again = RawPeer::connect(&c, raw.me.clone()).await;
    let err = again.register(1, 1 << 30).await.expect_err("forgotten");
    assert!(err.contains("not allowed to register"), "{err}");
    // The task runs elsewhere as a new attempt.
    let live = c.add_worker(1).await;
    let done = c.finished(id).await;
    assert_eq!(done.status, Some(TaskStatus::Succeeded), "{done:?}");
    assert_eq!((done.attempt, done.worker), (2, Some(live.key)));
    live.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_claiming_too_much_is_clamped_to_the_caps() {
    let c = Cluster::start(fast_heartbeats()).await;
    let raw = RawPeer::fresh(&c).await;
    raw.join(c.token()).await.expect("joins");
    let _control = raw.register(u32::MAX, u64::MAX).await.expect("registers");
    let workers = c.client.workers().await.expect("workers");
    let w = workers.iter().find(|w| w.key == raw.key()).expect("listed");
    assert_eq!(w.info.slots, fabric_dispatcher::DEFAULT_MAX_WORKER_SLOTS);
    assert_eq!(
        w.info.memory_bytes,
        fabric_dispatcher::DEFAULT_MAX_WORKER_MEMORY
    );
}
