//! A dispatcher played by the test: a real `fabric worker` pinned to its key
//! connects, registers, and is handed hand-made (even hostile) manifests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fabric_net::{Identity, NetConfig, framed};
use fabric_proto::wire::{Ack, Assign, Report, Request, Response, WorkerMsg};
use fabric_proto::{DEFAULT_MAX_FRAME, Limits, Manifest, Sha256, Signed, TaskId, TaskKind, now_ms};
use quinn::{Connection, Endpoint};

use super::cluster::pinned_worker_cmd;
use super::process::Proc;
use super::sandbox::Sandbox;

/// The frame cap the fake reads and writes with.
const MAX: usize = DEFAULT_MAX_FRAME;

/// A fake dispatcher with one real worker (one slot) connected to it. It
/// answers the worker's registration, swallows its heartbeats and serves
/// blob fetches from a fixed map.
pub struct FakeDispatcher {
    /// The key the worker pinned; sign manifests with it.
    pub key: Identity,
    conn: Connection,
    /// The worker process (named `worker`, data in `<home>/w`).
    pub worker: Proc,
    _endpoint: Endpoint,
}

impl FakeDispatcher {
    /// Listens on loopback, starts a worker pinned to a fresh key, and
    /// accepts its registration. Blob fetches are answered from `blobs`
    /// (empty bytes for unknown digests).
    pub async fn start(sb: &Sandbox, blobs: HashMap<Sha256, Vec<u8>>) -> Self {
        Self::start_with(sb, blobs, &[]).await
    }

    /// [`FakeDispatcher::start`] with more flags for the worker
    /// (`--allow PROGRAM`, say).
    pub async fn start_with(
        sb: &Sandbox,
        blobs: HashMap<Sha256, Vec<u8>>,
        worker_flags: &[&str],
    ) -> Self {
        let key = Identity::generate().unwrap();
        let ep = fabric_net::server_endpoint(
            &key,
            "127.0.0.1:0".parse().unwrap(),
            &NetConfig::default(),
        )
        .unwrap();
        let addr: SocketAddr = ep.local_addr().unwrap();
        let mut cmd = pinned_worker_cmd(sb, &key.public().to_string(), addr, "w");
        cmd.args(["--slots", "1"]).args(worker_flags);
        let worker = Proc::spawn("worker", cmd, sb.dir.path());
        let conn = tokio::time::timeout(Duration::from_secs(30), async {
            ep.accept().await.unwrap().await.unwrap()
        })
        .await
        .expect("worker connects");
        let (mut send, mut recv) = framed::accept(&conn, MAX).await.unwrap();
        let req: Request = recv.expect().await.unwrap();
        assert!(matches!(req, Request::Register(_)), "{req:?}");
        send.send(&Response::Registered {
            heartbeat_ms: 1000,
            cancel: Vec::new(),
        })
        .await
        .unwrap();
        // Heartbeats: keep reading them; blob fetches: serve from `blobs`.
        tokio::spawn(async move {
            let _keep = send;
            while let Ok(Some(_)) = recv.recv::<WorkerMsg>().await {}
        });
        let blobs = Arc::new(blobs);
        let c = conn.clone();
        tokio::spawn(async move {
            while let Ok((mut s, mut r)) = framed::accept(&c, MAX).await {
                let req: Request = r.expect().await.unwrap();
                let resp = match req {
                    Request::GetBlob { sha } => Response::BlobBytes {
                        bytes: blobs.get(&sha).cloned().unwrap_or_default(),
                    },
                    other => panic!("unexpected request {other:?}"),
                };
                s.send(&resp).await.unwrap();
                let _ = s.finish();
            }
        });
        Self {
            key,
            conn,
            worker,
            _endpoint: ep,
        }
    }

    /// Signs a manifest with the key the worker pinned.
    pub fn sign(&self, m: &Manifest) -> Signed<Manifest> {
        Signed::sign(self.key.signing_key(), m).unwrap()
    }

    /// Assigns a manifest with its input and returns the worker's final
    /// report (guest events skipped), acknowledging it as recorded.
    pub async fn assign(&self, manifest: Signed<Manifest>, input: &[u8]) -> Report {
        let (mut send, mut recv) = framed::open(&self.conn, MAX).await.unwrap();
        send.send(&Assign::Run {
            manifest,
            input: input.to_vec(),
            input_blob: None,
        })
        .await
        .unwrap();
        loop {
            let report: Report = recv.expect().await.unwrap();
            if matches!(report, Report::Event(_)) {
                continue;
            }
            send.send(&Ack { recorded: true }).await.unwrap();
            let _ = send.finish();
            return report;
        }
    }
}

/// A fresh manifest (attempt 1, default limits, valid for a minute) for
/// running `module` on `input`.
pub fn manifest(module: Sha256, input: &[u8]) -> Manifest {
    Manifest {
        version: Manifest::VERSION,
        task_id: TaskId::new(),
        attempt: 1,
        kind: TaskKind::Wasm { module },
        args: vec![],
        env: vec![],
        input_digest: Sha256::of(input),
        limits: Limits::default(),
        issued_at_ms: now_ms(),
        expires_at_ms: now_ms() + 60_000,
        trace: None,
        secrets: Vec::new(),
    }
}

/// The reason of a refusal report; panics on any other report.
pub fn refused(report: Report) -> String {
    match report {
        Report::Refused { reason } => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
