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

use std::net::SocketAddr;
use std::time::Duration;

use fabric_net::{Identity, NetConfig, PublicKey};
use fabric_proto::wire::{ErrorCode, LeaderHint, Request};

use crate::ClientError;

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
