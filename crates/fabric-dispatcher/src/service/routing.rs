//! Accepting connections, telling what each key may do, and handing every
//! stream to the room that serves its first request.

use std::sync::Arc;

use fabric_net::framed::{FramedRecv, FramedSend};
use fabric_net::{PublicKey, StreamError, peer_key};
use fabric_proto::wire::{
    ErrorBody, ErrorCode, RaftKind, Request, Response, WIRE_VERSION, WireError,
};
use fabric_store::{PeerRole, Store, StoreError};
use quinn::Connection;
use tracing::Instrument as _;

use super::config::PeerLimits;
use super::join::{self, Joined};
use super::state::Shared;
use super::{ServiceError, assign, control, requests};

/// Close code for a connection over a per-key or per-role limit.
const TOO_MANY: u32 = 4;

/// Frame cap for keys that are neither a worker nor a client (a join
/// request is a few dozen bytes), so they cannot make the dispatcher
/// buffer large frames.
const UNKNOWN_PEER_MAX_FRAME: usize = 4096;

/// What only admin clients may do, as a refusal names it.
const ADMIN_WHAT: &str = "manage join tokens and workers";

/// Accepts connections until the endpoint closes.
pub(crate) async fn accept_loop(shared: Arc<Shared>, endpoint: quinn::Endpoint) {
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

/// Serves every stream of one connection, inside a span naming the peer.
async fn serve_connection(shared: Arc<Shared>, conn: Connection) {
    let addr = conn.remote_address();
    let Some(key) = peer_key(&conn) else {
        tracing::warn!(%addr, "peer without an ed25519 key; closing");
        conn.close(1u32.into(), b"no identity");
        return;
    };
    let span = tracing::info_span!("peer", %addr, key = %key.short());
    async move {
        tracing::debug!("connection");
        let roles = match Roles::of(&shared, &key) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the peer's roles; closing");
                conn.close(1u32.into(), b"internal error");
                return;
            }
        };
        let _counted = match shared
            .peers
            .admit(key.to_bytes(), roles.any(), &shared.cfg.peers)
        {
            Ok(c) => c,
            Err(why) => {
                tracing::warn!(%why, "refusing a connection");
                conn.close(TOO_MANY.into(), why.as_bytes());
                return;
            }
        };
        roles.open_streams(&conn, &shared.cfg.peers);
        loop {
            match conn.accept_bi().await {
                Ok((send, recv)) => {
                    let shared = shared.clone();
                    let conn = conn.clone();
                    let stream = async move {
                        if let Err(e) = serve_stream(&shared, &conn, key, send, recv).await {
                            tracing::debug!(error = %e, "stream ended with an error");
                        }
                    };
                    tokio::spawn(stream.in_current_span());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "connection closed");
                    return;
                }
            }
        }
    }
    .instrument(span)
    .await;
}

/// What a key may do, from the trusted-peer lists in the store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Roles {
    /// A worker that joined or is allow-listed.
    pub worker: bool,
    /// A client with a cluster profile.
    pub client: bool,
    /// A client that may manage join tokens and workers.
    pub admin: bool,
    /// Another dispatcher of this one's group.
    pub member: bool,
}

impl Roles {
    fn of(shared: &Shared, key: &PublicKey) -> Result<Self, StoreError> {
        let store: &Store = &shared.store;
        let k = key.to_bytes();
        Ok(Self {
            worker: store.is_peer(PeerRole::Worker, &k)?,
            client: store.is_peer(PeerRole::Client, &k)?,
            admin: store.is_peer(PeerRole::Admin, &k)?,
            member: shared
                .group
                .as_ref()
                .is_some_and(|g| g.node().is_member(&k)),
        })
    }

    fn any(self) -> bool {
        self.worker || self.client || self.member
    }

    /// Raises the connection's stream limit from the transport's small
    /// default (what a key without a role gets) to its role's.
    fn open_streams(self, conn: &Connection, limits: &PeerLimits) {
        let streams = match (self.client, self.worker || self.member) {
            (true, _) => limits.client_streams,
            (false, true) => limits.worker_streams,
            (false, false) => return,
        };
        conn.set_max_concurrent_bi_streams(streams.into());
    }

    /// The largest frame this peer may send.
    fn frame_cap(self, max: usize) -> usize {
        if self.any() {
            max
        } else {
            UNKNOWN_PEER_MAX_FRAME
        }
    }

    /// Why `key` may not do `what`, with a hint for a key with no role.
    fn deny(self, key: &PublicKey, what: &str) -> String {
        let hint = if self.client && what == ADMIN_WHAT {
            "only the admin key (the profile written by `fabric up`/`fabric dispatcher`) may"
        } else if self.any() {
            "it has another role"
        } else {
            "workers join with `fabric worker --join TOKEN`, clients need a cluster profile from `fabric up`/`fabric dispatcher`"
        };
        format!("key {key} is not allowed to {what}; {hint}")
    }
}

async fn serve_stream(
    shared: &Arc<Shared>,
    conn: &Connection,
    key: PublicKey,
    send: quinn::SendStream,
    recv: quinn::RecvStream,
) -> Result<(), ServiceError> {
    let max = shared.cfg.net.max_frame;
    let mut send = FramedSend::new(send, max);
    let roles = match Roles::of(shared, &key) {
        Ok(r) => r,
        Err(e) => return reply_error(&mut send, ErrorCode::Internal, e.to_string()).await,
    };
    let mut recv = FramedRecv::new(recv, roles.frame_cap(max));
    let timeout = shared.cfg.net.request_timeout;
    let read = tokio::time::timeout(timeout, read_request(&mut send, &mut recv)).await;
    let Ok(read) = read else {
        tracing::warn!("no whole request within {timeout:?}; closing the stream");
        recv.stop();
        return reply_error(
            &mut send,
            ErrorCode::BadRequest,
            format!("no whole request arrived within {timeout:?}"),
        )
        .await;
    };
    let Some(request) = read? else {
        return Ok(());
    };
    if let Some(group) = &shared.group {
        match request {
            Request::Raft { kind, body } if roles.member && kind != RaftKind::Propose => {
                let answer = match fabric_raft::serve(group.node().raft(), kind, &body).await {
                    Ok(bytes) => Response::Raft(bytes),
                    Err(why) => Response::Error(ErrorBody::new(ErrorCode::Malformed, why)),
                };
                send.send(&answer).await?;
                send.finish()?;
                return Ok(());
            }
            Request::Raft {
                kind: RaftKind::Propose,
                body,
            } if group.node().is_voter(&key.to_bytes()) => {
                let answer = super::group::propose(shared, group, &body).await;
                send.send(&Response::Raft(answer)).await?;
                send.finish()?;
                return Ok(());
            }
            Request::Raft { .. } => {}
            // Where the group stands: any member says what it sees.
            Request::Members if roles.client => {
                send.send(&Response::Members(super::group::members(group)))
                    .await?;
                send.finish()?;
                return Ok(());
            }
            // Members fetch blob files from each other (one that caught up
            // by a snapshot lacks them): any member serves them.
            Request::GetBlobRange { sha, offset, len } if roles.member => {
                let answer = requests::blobs::get_range(shared, &sha, offset, len);
                return requests::respond(&mut send, answer).await;
            }
            // A follower serves nothing but Raft: ask the leader.
            _ if !group.leading() => {
                send.send(&Response::Error(group.not_leader())).await?;
                send.finish()?;
                return Ok(());
            }
            _ => {}
        }
    }
    match request {
        Request::Join { secret } => {
            match join::join(shared, &key, conn.remote_address(), &secret).await? {
                Joined::Trusted => {
                    Roles {
                        worker: true,
                        ..roles
                    }
                    .open_streams(conn, &shared.cfg.peers);
                    send.send(&Response::Joined).await?;
                    send.finish()?;
                    Ok(())
                }
                Joined::Refused(msg) => reply_error(&mut send, ErrorCode::Unauthorized, msg).await,
            }
        }
        Request::Register(info) if roles.worker => {
            control::serve(shared, conn, key, info, send, recv).await
        }
        Request::LateReport {
            id,
            attempt,
            outcome,
        } if roles.worker => {
            let wk = fabric_proto::WorkerKey(key.to_bytes());
            let answer = assign::late_report(shared, wk, id, attempt, *outcome)
                .await
                .map(|recorded| Response::Ack(fabric_proto::wire::Ack { recorded }))
                .map_err(requests::RequestError::from);
            requests::respond(&mut send, answer).await
        }
        Request::GetBlob { sha } if roles.any() => {
            requests::respond(&mut send, requests::blobs::get(shared, &sha)).await
        }
        Request::GetBlobRange { sha, offset, len } if roles.any() => {
            let answer = requests::blobs::get_range(shared, &sha, offset, len);
            requests::respond(&mut send, answer).await
        }
        request
            if roles.client
                && requests::is_client_request(&request)
                && (roles.admin || !requests::is_admin_request(&request)) =>
        {
            let actor = format!("key {}", &key.to_string()[..16]);
            super::audit::acting(actor, requests::serve(shared, request, &mut send)).await
        }
        request => {
            let what = match request {
                Request::Register(_) | Request::LateReport { .. } => "register as a worker",
                Request::GetBlob { .. } | Request::GetBlobRange { .. } => "fetch blobs",
                Request::Raft { .. } => "take part in the dispatchers' Raft group",
                r if requests::is_admin_request(&r) => ADMIN_WHAT,
                _ => "use the client API",
            };
            tracing::warn!(what, "request from a key without that role");
            reply_error(&mut send, ErrorCode::Unauthorized, roles.deny(&key, what)).await
        }
    }
}

/// Reads the stream's first request. What cannot be read (another protocol
/// version, garbage, a frame over the cap) is answered here, and `None`
/// returned; the connection keeps serving other streams.
async fn read_request(
    send: &mut FramedSend,
    recv: &mut FramedRecv,
) -> Result<Option<Request>, ServiceError> {
    let (code, message) = match recv.recv_raw().await {
        Ok(Some(bytes)) => match fabric_proto::wire::decode_msg(&bytes) {
            Ok(r) => return Ok(Some(r)),
            Err(WireError::Unsupported(v)) => {
                tracing::warn!(version = v, "peer speaks another protocol version");
                (
                    ErrorCode::Unsupported,
                    format!(
                        "protocol version {v} is not supported; this dispatcher speaks {WIRE_VERSION}"
                    ),
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "malformed request");
                (ErrorCode::Malformed, format!("malformed request: {e}"))
            }
        },
        Ok(None) => return Ok(None),
        Err(StreamError::FrameTooLarge { len, max }) => {
            tracing::warn!(len, max, "refused oversized frame");
            recv.stop();
            (
                ErrorCode::TooLarge,
                format!("frame of {len} bytes is over the {max}-byte cap"),
            )
        }
        Err(e) => return Err(e.into()),
    };
    reply_error(send, code, message).await?;
    Ok(None)
}

/// Answers with one error and ends the stream.
pub(crate) async fn reply_error(
    send: &mut FramedSend,
    code: ErrorCode,
    message: impl Into<String>,
) -> Result<(), ServiceError> {
    send.send(&Response::Error(ErrorBody::new(code, message)))
        .await?;
    send.finish()?;
    Ok(())
}
