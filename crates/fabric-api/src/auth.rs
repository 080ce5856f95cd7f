//! Bearer tokens and per-token rate limits.
//!
//! Every `/api/v1` route but the OpenAPI document takes a [`Caller`] of the
//! role it needs: the `Authorization: Bearer fab_...` header checked
//! against the store (401 without it or for a token that is unknown,
//! expired or revoked), then the token's share of the rate limit (429 with
//! `Retry-After`), then its role (403), then a slot among the token's
//! requests in flight (429; held until the handler returns) — all before a
//! body is read.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use fabric_proto::ApiRole;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiState;
use super::error::ApiError;
use super::slots::Slot;
use fabric_dispatcher::front::api_tokens;

/// Requests per second each token may make, and the burst it may save up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: u32,
    /// Requests allowed at once after a quiet spell.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 100 requests a second with bursts of 200, per token.
    fn default() -> Self {
        Self {
            per_second: 100,
            burst: 200,
        }
    }
}

/// The limiter: one bucket per token id. Its map holds only ids of tokens
/// that authenticated (the store's tokens bound it) and is pruned of full
/// buckets as it grows.
pub(crate) struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
}

/// Buckets kept before full ones are pruned (every few seconds).
const PRUNE_AT: usize = 1024;

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let per_second = NonZeroU32::new(limit.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
        }
    }

    /// Forgets buckets that are full again (called now and then, not per
    /// request: it walks the whole map).
    pub(crate) fn prune(&self) {
        if self.inner.len() > PRUNE_AT {
            self.inner.retain_recent();
        }
    }

    /// Ok, or the seconds to wait.
    fn check(&self, id: &str) -> Result<(), u64> {
        self.inner.check_key(&id.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// What a route needs: a marker per role.
pub(crate) trait Need: Send + Sync {
    /// The weakest role that may call it.
    const ROLE: ApiRole;
    /// Whether the request counts against the token's requests in flight.
    const COUNTED: bool = true;
}

/// Routes any valid token may call.
pub(crate) struct Read;
/// Routes that change the queue: uploads, submits, cancels.
pub(crate) struct Submit;
/// Routes only admins may call.
pub(crate) struct Admin;
/// `/metrics`: a read token, not counted among its requests in flight so
/// that a scrape is never refused for the token's uploads.
pub(crate) struct Monitor;

impl Need for Read {
    const ROLE: ApiRole = ApiRole::Read;
}
impl Need for Submit {
    const ROLE: ApiRole = ApiRole::Submit;
}
impl Need for Admin {
    const ROLE: ApiRole = ApiRole::Admin;
}
impl Need for Monitor {
    const ROLE: ApiRole = ApiRole::Read;
    const COUNTED: bool = false;
}

/// A caller whose token is valid, within its rate limit, and whose role
/// allows `N`. Extracted from the headers alone, before any body is read,
/// so a token too weak for a route never gets to send it a body.
pub(crate) struct Caller<N: Need> {
    /// The token's id (lower case).
    pub id: String,
    /// The token's role.
    pub role: ApiRole,
    /// Its slot among the token's requests in flight.
    _slot: Option<Slot>,
    _need: std::marker::PhantomData<N>,
}

impl<N: Need> Caller<N> {
    /// Who this is in the audit trail.
    pub(crate) fn actor(&self) -> String {
        format!("token {}", self.id)
    }
}

impl<N: Need> FromRequestParts<Arc<ApiState>> for Caller<N> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "send a token: Authorization: Bearer fab_... (`fabric token create --role read`)",
            ));
        };
        let text = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer TOKEN`")
            })?;
        let (id, role) = match api_tokens::check(&state.shared, text)? {
            Ok(found) => found,
            Err(why) => return Err(ApiError::unauthorized(why.message())),
        };
        state.limiter.check(&id).map_err(ApiError::rate_limited)?;
        if !role.allows(N::ROLE) {
            return Err(ApiError::forbidden(format!(
                "this needs a token with the {} role; this token's role is {role}",
                N::ROLE
            )));
        }
        let slot = if N::COUNTED {
            Some(state.requests.take(&id)?)
        } else {
            None
        };
        Ok(Self {
            id,
            role,
            _slot: slot,
            _need: std::marker::PhantomData,
        })
    }
}
