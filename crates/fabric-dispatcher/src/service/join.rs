//! Join tokens: minting, listing and revoking them, and a worker proving
//! one's secret.
//!
//! A token is accepted until it expires (default 24 h,
//! [`DispatcherConfig::join_token_ttl`](super::DispatcherConfig)), has no
//! uses left (default unlimited) or is revoked. Its id is a prefix of its
//! secret's digest, so listing shows nothing that helps to join.

use std::net::SocketAddr;
use std::time::Duration;

use fabric_net::{JoinToken, PublicKey};
use fabric_proto::wire::TokenSummary;
use fabric_store::{EventKind, JoinTokenRecord, PeerRole, StoreError, TokenRefusal};

use super::state::Shared;

/// Hex characters of the digest shown as a token's id.
const ID_LEN: usize = 12;

/// What to mint.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TokenRequest {
    /// Lifetime; `None`: the configured default.
    pub ttl: Option<Duration>,
    /// Joins allowed; `None`: unlimited.
    pub uses: Option<u32>,
}

/// Mints a join token; its record is stored and flushed.
pub(crate) async fn mint(
    shared: &Shared,
    req: TokenRequest,
) -> Result<(JoinToken, TokenSummary), StoreError> {
    let token = JoinToken::generate(shared.identity.public());
    let digest = JoinToken::secret_digest(&token.secret);
    let now = shared.now();
    let ttl = req.ttl.unwrap_or(shared.cfg.join_token_ttl);
    let rec = JoinTokenRecord {
        created_ms: now,
        expires_ms: Some(now.saturating_add(ttl.as_millis().try_into().unwrap_or(u64::MAX))),
        uses_left: req.uses,
        revoked: false,
    };
    shared.ledger.add_join_token(&digest, &rec)?;
    let info = summary(&digest, &rec);
    shared.event(None, EventKind::TokenCreated, format!("token {}", info.id));
    shared.ledger.durable().await?;
    Ok((token, info))
}

/// Every join token, newest first.
pub(crate) fn list(shared: &Shared) -> Result<Vec<TokenSummary>, StoreError> {
    let mut out: Vec<TokenSummary> = shared
        .store
        .join_tokens()?
        .iter()
        .map(|(d, r)| summary(d, r))
        .collect();
    out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// How many join tokens have ids starting with `id`.
pub(crate) fn matching(shared: &Shared, id: &str) -> Result<usize, StoreError> {
    Ok(shared
        .store
        .join_tokens()?
        .iter()
        .filter(|(d, _)| !id.is_empty() && hex::encode(d).starts_with(id))
        .count())
}

/// How a revocation ended.
pub(crate) enum Revoked {
    /// Done (flushed).
    Done(TokenSummary),
    /// No token's id starts with this.
    NoMatch,
    /// Several do.
    Ambiguous(usize),
}

/// Revokes the token whose id starts with `id`.
pub(crate) async fn revoke(shared: &Shared, id: &str) -> Result<Revoked, StoreError> {
    let id = id.trim().to_ascii_lowercase();
    let matches: Vec<_> = shared
        .store
        .join_tokens()?
        .into_iter()
        .filter(|(d, _)| !id.is_empty() && hex::encode(d).starts_with(&id))
        .collect();
    let (digest, mut rec) = match matches.len() {
        0 => return Ok(Revoked::NoMatch),
        1 => matches.into_iter().next().expect("one match"),
        n => return Ok(Revoked::Ambiguous(n)),
    };
    shared.ledger.revoke_join_token(&digest).await?;
    rec.revoked = true;
    let info = summary(&digest, &rec);
    shared.event(None, EventKind::TokenRevoked, format!("token {}", info.id));
    shared.ledger.durable().await?;
    tracing::info!(token = %info.id, "join token revoked");
    Ok(Revoked::Done(info))
}

/// How a join attempt ended.
pub(crate) enum Joined {
    /// The secret was right (or the key was already trusted); the key is a
    /// trusted worker (flushed).
    Trusted,
    /// The token is not accepted; the message says why, for the worker.
    Refused(String),
}

/// Checks a worker's join secret and, when valid, spends one use and
/// trusts its key. A key that is already a trusted worker (a restart with
/// the same `--join`) is accepted without spending a use.
pub(crate) async fn join(
    shared: &Shared,
    key: &PublicKey,
    addr: SocketAddr,
    secret: &[u8],
) -> Result<Joined, StoreError> {
    let k = key.to_bytes();
    if shared.store.is_peer(PeerRole::Worker, &k)? {
        return Ok(Joined::Trusted);
    }
    let digest = JoinToken::secret_digest(secret);
    if let Err(why) = shared.ledger.use_join_token(&digest, shared.now()).await? {
        if why == TokenRefusal::Unknown {
            tracing::warn!("worker presented a wrong join token");
        } else {
            tracing::warn!(
                ?why,
                "worker presented a join token that is no longer accepted"
            );
        }
        return Ok(Joined::Refused(refusal_message(why, shared.now())));
    }
    shared
        .ledger
        .add_peer(PeerRole::Worker, &k, &addr.to_string())?;
    shared.event(None, EventKind::WorkerJoined, format!("{key} from {addr}"));
    shared.ledger.durable().await?;
    tracing::info!("worker joined");
    Ok(Joined::Trusted)
}

/// Whether `token` would be accepted now (used to reuse a saved token).
pub(crate) fn is_valid(shared: &Shared, token: &JoinToken) -> Result<bool, StoreError> {
    let digest = JoinToken::secret_digest(&token.secret);
    Ok(shared
        .store
        .join_token(&digest)?
        .is_some_and(|r| r.refusal(shared.now()).is_none()))
}

fn refusal_message(why: TokenRefusal, now_ms: u64) -> String {
    let hint = "ask the operator for a new one (`fabric token create`)";
    match why {
        TokenRefusal::Unknown => {
            format!("join token secret is not valid for this dispatcher; {hint}")
        }
        TokenRefusal::Revoked => format!("join token was revoked; {hint}"),
        TokenRefusal::Expired { at_ms } => format!(
            "join token expired {} ago; {hint}",
            ago(now_ms.saturating_sub(at_ms))
        ),
        TokenRefusal::UsedUp => format!("join token was used up (no uses left); {hint}"),
    }
}

/// `42s`, `5m`, `3h`, `2d`: how long ago, coarsely.
fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..120 => format!("{s}s"),
        120..7200 => format!("{}m", s / 60),
        7200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn summary(digest: &[u8; 32], rec: &JoinTokenRecord) -> TokenSummary {
    let mut id = hex::encode(digest);
    id.truncate(ID_LEN);
    TokenSummary {
        id,
        created_ms: rec.created_ms,
        expires_ms: rec.expires_ms,
        uses_left: rec.uses_left,
        revoked: rec.revoked,
        role: None,
    }
}
