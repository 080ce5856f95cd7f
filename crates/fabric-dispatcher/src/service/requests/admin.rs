//! Admin requests: join tokens (mint, list, revoke) and removing workers.
//! Routing lets only admin clients reach these.

use std::time::Duration;

use fabric_proto::wire::{ErrorBody, ErrorCode, Response};

use super::{Answer, RequestError};
use crate::service::join::{self, Revoked, TokenRequest};
use crate::service::state::Shared;
use crate::service::workers;

/// Mints a join token.
pub(crate) async fn create_token(
    shared: &Shared,
    ttl_ms: Option<u64>,
    uses: Option<u32>,
) -> Answer {
    if ttl_ms == Some(0) {
        return Err(bad("--ttl must be more than 0"));
    }
    if uses == Some(0) {
        return Err(bad("--uses must be at least 1"));
    }
    let req = TokenRequest {
        ttl: ttl_ms.map(Duration::from_millis),
        uses,
    };
    let (token, info) = join::mint(shared, req).await?;
    Ok(Response::TokenCreated {
        token: token.to_string(),
        info,
    })
}

/// Lists join tokens (never their secrets).
pub(crate) fn list_tokens(shared: &Shared) -> Answer {
    Ok(Response::Tokens(join::list(shared)?))
}

/// Revokes the join token whose id starts with `id`.
pub(crate) async fn revoke_token(shared: &Shared, id: &str) -> Answer {
    match join::revoke(shared, id).await? {
        Revoked::Done(info) => Ok(Response::TokenRevoked(info)),
        Revoked::NoMatch => Err(RequestError::NotFound(format!(
            "no join token with id {id:?} (see `fabric token list`)"
        ))),
        Revoked::Ambiguous(n) => Err(RequestError::Conflict(format!(
            "{n} join tokens have ids starting with {id:?}; give more of the id"
        ))),
    }
}

/// Removes the worker whose key starts with `key`.
pub(crate) async fn remove_worker(shared: &Shared, key: &str) -> Answer {
    let keys = workers::matching(shared, key)?;
    let key = match keys.as_slice() {
        [] => {
            return Err(RequestError::NotFound(format!(
                "no worker with key {key:?} (see `fabric workers`)"
            )));
        }
        [k] => *k,
        many => {
            return Err(RequestError::Conflict(format!(
                "{} workers have keys starting with {key:?}; give more of the key",
                many.len()
            )));
        }
    };
    let removed = workers::remove_worker(shared, key).await?;
    Ok(Response::WorkerRemoved {
        key,
        connected: removed.connected,
        requeued: removed.requeued,
    })
}

fn bad(message: &str) -> RequestError {
    RequestError::Refused(ErrorBody::new(ErrorCode::BadRequest, message))
}
