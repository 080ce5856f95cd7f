//! Join tokens: minting them, and a worker proving one's secret.

use std::net::SocketAddr;

use fabric_net::{JoinToken, PublicKey};
use fabric_store::{EventKind, PeerRole, StoreError};

use super::state::Shared;

/// Mints a join token; its secret's digest is stored and flushed.
pub(crate) async fn mint(shared: &Shared) -> Result<JoinToken, StoreError> {
    let token = JoinToken::generate(shared.identity.public());
    shared
        .store
        .add_join_secret(&JoinToken::secret_digest(&token.secret))?;
    shared.event(None, EventKind::TokenCreated, String::new());
    shared.commit.durable().await?;
    Ok(token)
}

/// How a join attempt ended.
pub(crate) enum Joined {
    /// The secret was right; the key is now a trusted worker (flushed).
    Trusted,
    /// The secret matches no token of this dispatcher.
    WrongSecret,
}

/// Checks a worker's join secret and, when right, trusts its key.
pub(crate) async fn join(
    shared: &Shared,
    key: &PublicKey,
    addr: SocketAddr,
    secret: &[u8],
) -> Result<Joined, StoreError> {
    if !shared
        .store
        .is_join_secret(&JoinToken::secret_digest(secret))?
    {
        tracing::warn!("worker presented a wrong join token");
        return Ok(Joined::WrongSecret);
    }
    shared
        .store
        .add_peer(PeerRole::Worker, &key.to_bytes(), &addr.to_string())?;
    shared.event(None, EventKind::WorkerJoined, format!("{key} from {addr}"));
    shared.commit.durable().await?;
    tracing::info!("worker joined");
    Ok(Joined::Trusted)
}
