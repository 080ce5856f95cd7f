//! Which dispatcher a client talks to, and following the leader of a group
//! of dispatchers (issue 26).
//!
//! A follower answers [`ErrorCode::NotLeader`] with the leader's address
//! and key ([`LeaderHint`]); the client connects there (the hint comes
//! over a connection pinned to a member's key, so its key is trusted as
//! the member's own word) and sends the request again: a follower refuses
//! before doing anything, so that is always safe. When the dispatcher
//! stops answering, the client tries the group's other members in turn
//! (the profile lists them) and sends again what is safe to send twice;
//! a submit whose answer was lost is not sent again (it may have been
//! queued), its error says so.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use fabric_net::{Identity, NetConfig, PublicKey};
use fabric_proto::wire::{ErrorCode, LeaderHint, Request};

use fabric_net::framed::{self, FramedRecv};
use fabric_proto::wire::Response;

use crate::{Client, ClientError};

mod tries;
pub(crate) use tries::Tries;

/// Most redirects and reconnects for one request.
const MAX_HOPS: usize = 20;
/// Wait between tries while the group has no leader.
const NO_LEADER_WAIT: Duration = Duration::from_millis(300);
/// The connection now, and what it takes to make another.
#[derive(Debug)]
pub(crate) struct Route {
    pub(crate) conn: quinn::Connection,
    pub(crate) addr: SocketAddr,
    /// Counts reconnects, so concurrent callers that saw one connection
    /// fail make one new one.
    pub(crate) generation: u64,
}

/// How to reach the group.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) identity: Identity,
    pub(crate) net: NetConfig,
    /// Every member the profile lists (key, address), tried in turn.
    pub(crate) members: Vec<(PublicKey, String)>,
}

/// What to do after a failed try.
pub(crate) enum Next {
    /// Connect to this member (a hint), then send again.
    Follow(Box<(PublicKey, String)>),
    /// Connect to the next member in the list, then send again.
    Another,
    /// Wait a little, then send again to the same one.
    Wait,
    /// Give up with the error.
    Stop,
}

/// Whether `req` may be sent again after its answer was lost (doing it
/// twice does no harm).
pub(crate) fn resendable(req: &Request) -> bool {
    !matches!(
        req,
        Request::Submit { .. }
            | Request::SubmitMany { .. }
            | Request::SubmitJob { .. }
            | Request::Retry { .. }
            | Request::RetryJob { .. }
            | Request::CreateJoinToken
            | Request::CreateToken { .. }
            | Request::RotateKey { .. }
            | Request::Backup
    )
}

/// What to do about `err` from the request `req`, in a group.
pub(crate) fn next(err: &ClientError, req: &Request) -> Next {
    match err {
        ClientError::Remote(e) if e.code == ErrorCode::NotLeader => match &e.leader {
            Some(LeaderHint { addr, key, .. }) => match PublicKey::from_bytes(key) {
                Some(k) => Next::Follow(Box::new((k, addr.clone()))),
                None => Next::Another,
            },
            None => Next::Wait,
        },
        ClientError::Net { .. } if resendable(req) => Next::Another,
        _ => Next::Stop,
    }
}

/// Connects to `addr` (a `host:port`) pinned to `key`.
pub(crate) async fn connect(
    endpoint: &quinn::Endpoint,
    group: &Group,
    key: PublicKey,
    addr: &str,
) -> Result<(quinn::Connection, SocketAddr), ClientError> {
    let resolved = tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            ClientError::Unexpected(format!("the dispatcher address {addr:?} does not resolve"))
        })?;
    let conn = fabric_net::connect_from(endpoint, &group.identity, vec![key], resolved, &group.net)
        .await
        .map_err(|source| ClientError::Net {
            addr: resolved,
            source: source.into(),
        })?;
    Ok((conn, resolved))
}

/// A member that did not answer a handshake is not dialled again on a
/// hint for this long.
pub(crate) const SILENT_FOR: Duration = Duration::from_secs(5);

/// How long one member gets to answer a handshake.
pub(crate) const fn connect_timeout() -> Duration {
    Duration::from_millis(1_000)
}

pub(crate) const fn hops() -> usize {
    MAX_HOPS
}

pub(crate) const fn no_leader_wait() -> Duration {
    NO_LEADER_WAIT
}

/// Connecting to a group, and sending a request where it is served.
impl Client {
    /// Connects to a group of dispatchers: to the first of `members` that
    /// answers; every request then follows the leader (see the `route`
    /// module).
    pub async fn connect_group(
        identity: &Identity,
        members: Vec<(PublicKey, String)>,
        net: &NetConfig,
    ) -> Result<Self, ClientError> {
        let bind: SocketAddr = (std::net::Ipv6Addr::UNSPECIFIED, 0).into();
        let endpoint = quinn::Endpoint::client(bind)
            .or_else(|_| quinn::Endpoint::client((std::net::Ipv4Addr::UNSPECIFIED, 0).into()))
            .map_err(|e| ClientError::Unexpected(format!("cannot open a UDP socket: {e}")))?;
        // A leader that dies is noticed within 2 s (a new one is elected in
        // about as long), not at the usual idle timeout.
        let mut net = net.clone();
        net.keep_alive = net.keep_alive.min(std::time::Duration::from_millis(400));
        net.idle_timeout = net.idle_timeout.min(std::time::Duration::from_secs(2));
        let group = Group {
            identity: identity.clone(),
            net: net.clone(),
            members,
        };
        let mut last = None;
        for (key, addr) in &group.members {
            match connect(&endpoint, &group, *key, addr).await {
                Ok((conn, addr)) => {
                    return Ok(Self {
                        endpoint,
                        route: Mutex::new(Route {
                            conn,
                            addr,
                            generation: 0,
                        }),
                        group: Some(group),
                        reconnecting: tokio::sync::Mutex::new(Vec::new()),
                        max_frame: net.max_frame,
                        known_blobs: Mutex::new(HashSet::new()),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Unexpected("no dispatcher to connect to".into())))
    }

    /// Opens a stream, sends `req` and reads the first answer. The answer
    /// is read even if sending failed: a dispatcher that refuses a request
    /// (say, a frame over its cap) stops reading and says why. In a group,
    /// a follower's answer sends the request to the leader, and a
    /// dispatcher that stopped answering to another member.
    pub(crate) async fn first_answer(
        &self,
        req: &Request,
    ) -> Result<(Response, FramedRecv), ClientError> {
        let mut tries = Tries::default();
        loop {
            let (conn, addr, generation) = self.current();
            let err = match self.try_once(&conn, addr, req).await {
                Ok(answer) => return Ok(answer),
                Err(e) => e,
            };
            let Some(group) = &self.group else {
                return Err(err);
            };
            let Some(next) = tries.go_on(next(&err, req)) else {
                if err.is_connection_lost() {
                    // Later calls go to another member.
                    let _ = self
                        .reconnect(group, generation, Next::Another, tries.hops() + 1)
                        .await;
                }
                return Err(err);
            };
            let tried = tries.hops();
            if matches!(next, Next::Wait) {
                tokio::time::sleep(no_leader_wait()).await;
                continue;
            }
            if let Err(e) = self.reconnect(group, generation, next, tried).await {
                tracing::debug!(error = %e, "reconnecting to the group failed");
                tokio::time::sleep(no_leader_wait()).await;
            }
        }
    }

    async fn try_once(
        &self,
        conn: &quinn::Connection,
        addr: SocketAddr,
        req: &Request,
    ) -> Result<(Response, FramedRecv), ClientError> {
        let net = |source: fabric_net::StreamError| ClientError::Net {
            addr,
            source: source.into(),
        };
        let (mut send, mut recv) = framed::open(conn, self.max_frame).await.map_err(net)?;
        let sent = send.send(req).await;
        let _ = send.finish();
        match (sent, recv.expect().await) {
            (_, Ok(Response::Error(e))) => Err(ClientError::Remote(e)),
            (Ok(()), Ok(other)) => Ok((other, recv)),
            (Err(e), _) | (Ok(()), Err(e)) => Err(net(e)),
        }
    }

    /// Makes a new connection (unless another caller already replaced the
    /// one of `generation`): to the hinted leader, or to the next member.
    async fn reconnect(
        &self,
        group: &Group,
        generation: u64,
        next: Next,
        tried: usize,
    ) -> Result<(), ClientError> {
        let mut silent = self.reconnecting.lock().await;
        let (_, failed, now) = self.current();
        if now != generation {
            return Ok(());
        }
        silent.retain(|(_, at)| at.elapsed() < SILENT_FOR);
        // The hint first (unless it names the dispatcher that just failed,
        // or one that did not answer lately: then ask again shortly where
        // the leader is), then every member in turn, the failed one last.
        let mut order: Vec<(PublicKey, String)> = Vec::new();
        if let Next::Follow(hint) = next {
            if silent.iter().any(|(a, _)| *a == hint.1) && hint.1 != failed.to_string() {
                drop(silent);
                tokio::time::sleep(no_leader_wait()).await;
                return Ok(());
            }
            if hint.1 != failed.to_string() {
                order.push(*hint);
            }
        }
        let n = group.members.len();
        let start = (generation as usize + tried) % n.max(1);
        let mut rest: Vec<_> = (0..n)
            .map(|i| group.members[(start + i) % n].clone())
            .collect();
        rest.sort_by_key(|(_, a)| *a == failed.to_string());
        order.extend(rest);
        let mut last = None;
        let mut made = None;
        for (key, addr) in order {
            match tokio::time::timeout(
                connect_timeout(),
                connect(&self.endpoint, group, key, &addr),
            )
            .await
            {
                Ok(Ok(c)) => {
                    made = Some(c);
                    break;
                }
                Ok(Err(e)) => {
                    silent.push((addr, std::time::Instant::now()));
                    last = Some(e);
                }
                Err(_) => silent.push((addr, std::time::Instant::now())),
            }
        }
        let Some((conn, resolved)) = made else {
            return Err(last.unwrap_or_else(|| {
                ClientError::Unexpected("no dispatcher of the group answered".into())
            }));
        };
        let mut r = self.route.lock().unwrap_or_else(|p| p.into_inner());
        // The old connection is not closed here: other requests may be
        // in flight on it; it closes when the last of them lets go.
        r.conn = conn;
        r.addr = resolved;
        r.generation += 1;
        Ok(())
    }
}
