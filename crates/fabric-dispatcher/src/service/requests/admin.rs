//! Admin requests: join and REST API tokens (mint, list, revoke) and
//! removing workers. Routing lets only admin clients reach these.

use std::time::Duration;

use fabric_proto::ApiRole;
use fabric_proto::wire::{ErrorBody, ErrorCode, Response};

use super::{Answer, RequestError};
use crate::service::api_tokens;
use crate::service::join::{self, Revoked, TokenRequest};
use crate::service::state::Shared;
use crate::service::workers;

/// Mints a join token, or a REST API token when a `role` is given.
pub(crate) async fn create_token(
    shared: &Shared,
    ttl_ms: Option<u64>,
    uses: Option<u32>,
    role: Option<ApiRole>,
) -> Answer {
    if ttl_ms == Some(0) {
        return Err(bad("--ttl must be more than 0"));
    }
    if uses == Some(0) {
        return Err(bad("--uses must be at least 1"));
    }
    if let Some(role) = role {
        if uses.is_some() {
            return Err(bad(
                "--uses is for join tokens; an API token (--role) is valid until it expires or is revoked",
            ));
        }
        let (token, info) =
            api_tokens::mint(shared, role, ttl_ms.map(Duration::from_millis)).await?;
        return Ok(Response::TokenCreated { token, info });
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

/// Lists join and API tokens (never their secrets), newest first.
pub(crate) fn list_tokens(shared: &Shared) -> Answer {
    let mut all = join::list(shared)?;
    all.extend(api_tokens::list(shared)?);
    all.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
    Ok(Response::Tokens(all))
}

/// Revokes the join or API token whose id starts with `id`.
pub(crate) async fn revoke_token(shared: &Shared, id: &str) -> Answer {
    let id = id.trim().to_ascii_lowercase();
    let api = api_tokens::matching(shared, &id)?;
    let joins = join::matching(shared, &id)?;
    match (api.as_slice(), joins) {
        ([one], 0) => {
            return match api_tokens::revoke(shared, one).await? {
                Some(info) => Ok(Response::TokenRevoked(info)),
                None => Err(RequestError::NotFound(format!("no token with id {id:?}"))),
            };
        }
        ([], _) => {}
        (api, joins) => {
            return Err(RequestError::Conflict(format!(
                "{} tokens have ids starting with {id:?}; give more of the id",
                api.len() + joins
            )));
        }
    }
    match join::revoke(shared, &id).await? {
        Revoked::Done(info) => Ok(Response::TokenRevoked(info)),
        Revoked::NoMatch => Err(RequestError::NotFound(format!(
            "no token with id {id:?} (see `fabric token list`)"
        ))),
        Revoked::Ambiguous(n) => Err(RequestError::Conflict(format!(
            "{n} tokens have ids starting with {id:?}; give more of the id"
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
