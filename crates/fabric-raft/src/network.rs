//! Raft RPCs over QUIC: the dispatcher's own endpoint, one stream per RPC,
//! the target pinned by the key its membership names.
//!
//! An RPC is a [`Request::Raft`] whose body is the openraft request in
//! CBOR; the answer is a [`Response::Raft`] holding the receiver's
//! `Result` in CBOR, so a refusal by the remote Raft (a higher vote, say)
//! comes back as the error openraft expects. A peer that cannot be reached
//! is [`Unreachable`] (openraft backs off); a stream that breaks is a
//! network error (it retries).

use std::sync::Arc;

use fabric_net::framed;
use fabric_net::{Identity, NetConfig, PublicKey};
use fabric_proto::wire::{RaftKind, Request, Response};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Fabric, Member};

/// Room left in a frame for the envelope and the request's own fields.
const FRAME_SLACK: usize = 64 << 10;

/// What every connection of this node needs.
#[derive(Clone, Debug)]
pub struct Transport {
    /// The node's endpoint (the one it listens on).
    pub endpoint: quinn::Endpoint,
    /// The node's identity.
    pub identity: Arc<Identity>,
    /// Frame cap, timeouts.
    pub net: NetConfig,
}

/// Makes a [`PeerClient`] per member (openraft keeps one per target).
#[derive(Clone, Debug)]
pub struct QuicNetwork {
    transport: Transport,
}

impl QuicNetwork {
    /// RPCs from this node's endpoint.
    pub fn new(transport: Transport) -> Self {
        Self { transport }
    }
}

impl RaftNetworkFactory<Fabric> for QuicNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &Member) -> PeerClient {
        PeerClient {
            transport: self.transport.clone(),
            target,
            member: node.clone(),
            conn: None,
            answered: std::time::Instant::now(),
            unfinished: false,
        }
    }
}

/// RPCs to one member, on one connection made when first needed and
/// again after it breaks.
#[derive(Debug)]
pub struct PeerClient {
    transport: Transport,
    target: u64,
    member: Member,
    conn: Option<quinn::Connection>,
    /// When the connection last carried an answer.
    answered: std::time::Instant,
    /// The last RPC ended without an answer (timed out, or dropped by
    /// openraft's own timeout).
    unfinished: bool,
}

/// A connection whose RPCs went unanswered this long is dropped and made
/// again: the member may have restarted on the same address (the old
/// connection would linger until its idle timeout, and every heartbeat
/// and vote on it would be lost until then).
const SILENT: std::time::Duration = std::time::Duration::from_secs(1);

/// Why an RPC got no answer.
enum CallError {
    Unreachable(Unreachable),
    Network(NetworkError),
    TooLarge,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

impl PeerClient {
    async fn connection(&mut self) -> Result<quinn::Connection, CallError> {
        if self.unfinished
            && self.answered.elapsed() > SILENT
            && let Some(c) = self.conn.take()
        {
            c.close(0u32.into(), b"no answer");
        }
        if let Some(c) = &self.conn
            && c.close_reason().is_none()
        {
            return Ok(c.clone());
        }
        let key = PublicKey::from_bytes(&self.member.key).ok_or_else(|| {
            CallError::Unreachable(Unreachable::new(&Message(format!(
                "member {} has no valid key",
                self.member.addr
            ))))
        })?;
        let addr = tokio::net::lookup_host(&self.member.addr)
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                CallError::Unreachable(Unreachable::new(&Message(format!(
                    "cannot resolve {}",
                    self.member.addr
                ))))
            })?;
        let t = &self.transport;
        let conn = fabric_net::connect_from(&t.endpoint, &t.identity, vec![key], addr, &t.net)
            .await
            .map_err(|e| CallError::Unreachable(Unreachable::new(&e)))?;
        self.conn = Some(conn.clone());
        self.answered = std::time::Instant::now();
        Ok(conn)
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        kind: RaftKind,
        req: &Req,
        ttl: std::time::Duration,
    ) -> Result<Resp, CallError> {
        let body =
            fabric_proto::to_cbor(req).map_err(|e| CallError::Network(NetworkError::new(&e)))?;
        let max = self.transport.net.max_frame;
        if body.len() + FRAME_SLACK > max {
            return Err(CallError::TooLarge);
        }
        // Cleared once an answer comes; still set if this call times out
        // or openraft drops it.
        self.unfinished = true;
        let answer = tokio::time::timeout(ttl, async {
            let conn = self.connection().await?;
            let net = |e: fabric_net::StreamError| CallError::Network(NetworkError::new(&e));
            let (mut send, mut recv) = framed::open(&conn, max).await.map_err(net)?;
            send.send(&Request::Raft { kind, body })
                .await
                .map_err(net)?;
            send.finish().map_err(net)?;
            recv.expect::<Response>().await.map_err(net)
        })
        .await
        .map_err(|_| {
            CallError::Network(NetworkError::new(&Message(format!(
                "no answer from {} within {ttl:?}",
                self.member.addr
            ))))
        })?;
        if answer.is_ok() {
            self.unfinished = false;
            self.answered = std::time::Instant::now();
        }
        match answer {
            Ok(Response::Raft(bytes)) => fabric_proto::from_cbor(&bytes)
                .map_err(|e| CallError::Network(NetworkError::new(&e))),
            Ok(Response::Error(e)) => Err(CallError::Unreachable(Unreachable::new(&Message(
                format!("{} refused a Raft RPC: {}", self.member.addr, e.message),
            )))),
            Ok(other) => Err(CallError::Network(NetworkError::new(&Message(format!(
                "unexpected answer to a Raft RPC: {other:?}"
            ))))),
            Err(e) => {
                // A broken connection is made again at the next RPC.
                self.conn = None;
                Err(e)
            }
        }
    }

    fn rpc_error<E: std::error::Error>(
        &self,
        e: CallError,
        entries: u64,
    ) -> RPCError<u64, Member, RaftError<u64, E>> {
        match e {
            CallError::Unreachable(u) => RPCError::Unreachable(u),
            CallError::Network(n) => RPCError::Network(n),
            CallError::TooLarge => {
                RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint((entries / 2).max(1)))
            }
        }
    }

    fn remote<T, E: std::error::Error>(
        &self,
        answer: Result<T, RaftError<u64, E>>,
    ) -> Result<T, RPCError<u64, Member, RaftError<u64, E>>> {
        answer.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.member.clone(),
                e,
            ))
        })
    }
}

impl PeerClient {
    /// A client for RPCs to `member` from this node's endpoint.
    pub fn new(transport: Transport, member: Member) -> Self {
        Self {
            transport,
            target: crate::member_id(&member.key),
            member,
            conn: None,
            answered: std::time::Instant::now(),
            unfinished: false,
        }
    }

    /// Part of a blob `member` holds (at most one piece): its bytes and
    /// the blob's length, or why not. Members fetch the blob files they
    /// lack this way (one that caught up by a snapshot, which holds none).
    pub async fn blob_range(
        &mut self,
        sha: fabric_proto::Sha256,
        offset: u64,
        len: u64,
        ttl: std::time::Duration,
    ) -> Result<(Vec<u8>, u64), String> {
        let addr = self.member.addr.clone();
        let max = self.transport.net.max_frame;
        let answer = tokio::time::timeout(ttl, async {
            let conn = self
                .connection()
                .await
                .map_err(|_| format!("cannot reach {addr}"))?;
            let (mut send, mut recv) = framed::open(&conn, max).await.map_err(|e| e.to_string())?;
            send.send(&Request::GetBlobRange { sha, offset, len })
                .await
                .map_err(|e| e.to_string())?;
            send.finish().map_err(|e| e.to_string())?;
            recv.expect::<Response>().await.map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| format!("no answer from {addr} within {ttl:?}"))?;
        match answer {
            Ok(Response::BlobRange { total, bytes }) => Ok((bytes, total)),
            Ok(Response::Error(e)) => Err(format!("{addr}: {}", e.message)),
            Ok(other) => Err(format!("unexpected answer from {addr}: {other:?}")),
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// Asks `member` (the leader) to commit `cmd`; what applying it said,
    /// or why not.
    pub async fn propose(
        &mut self,
        cmd: &fabric_store::Command,
        ttl: std::time::Duration,
    ) -> Result<fabric_store::Applied, String> {
        match self
            .call::<_, Result<fabric_store::Applied, String>>(RaftKind::Propose, cmd, ttl)
            .await
        {
            Ok(answer) => answer,
            Err(CallError::Unreachable(u)) => Err(u.to_string()),
            Err(CallError::Network(n)) => Err(n.to_string()),
            Err(CallError::TooLarge) => Err("the proposal is over the frame cap".into()),
        }
    }
}

impl RaftNetwork<Fabric> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Fabric>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        let n = rpc.entries.len() as u64;
        let answer = self
            .call(RaftKind::Append, &rpc, option.hard_ttl())
            .await
            .map_err(|e| self.rpc_error(e, n))?;
        self.remote(answer)
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Fabric>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, Member, RaftError<u64, InstallSnapshotError>>,
    > {
        let answer = self
            .call(RaftKind::Snapshot, &rpc, option.hard_ttl())
            .await
            .map_err(|e| self.rpc_error(e, 1))?;
        self.remote(answer)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, Member, RaftError<u64>>> {
        let answer = self
            .call(RaftKind::Vote, &rpc, option.hard_ttl())
            .await
            .map_err(|e| self.rpc_error(e, 1))?;
        self.remote(answer)
    }
}

/// Serves one Raft RPC another member sent: the receiver's `Result`, in
/// CBOR, or why the request could not be read.
pub async fn serve(
    raft: &openraft::Raft<Fabric>,
    kind: RaftKind,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
        fabric_proto::from_cbor(b).map_err(|e| format!("malformed Raft RPC: {e}"))
    }
    fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
        fabric_proto::to_cbor(v).map_err(|e| format!("cannot encode a Raft answer: {e}"))
    }
    match kind {
        RaftKind::Append => enc(&raft.append_entries(dec(body)?).await),
        RaftKind::Vote => enc(&raft.vote(dec(body)?).await),
        RaftKind::Snapshot => enc(&raft.install_snapshot(dec(body)?).await),
        RaftKind::Propose => {
            Err("a proposal is served by the dispatcher, not the Raft layer".into())
        }
    }
}
