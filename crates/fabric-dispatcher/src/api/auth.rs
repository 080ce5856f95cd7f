//! Bearer tokens and per-token rate limits.
//!
//! Every `/api/v1` route but the OpenAPI document takes a [`Caller`]: the
//! `Authorization: Bearer fab_...` header checked against the store (401
//! without it or for a token that is unknown, expired or revoked), then
//! the token's share of the rate limit (429 with `Retry-After`). Handlers
//! then ask [`Caller::need`] for the role they require (403).

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
use crate::service::api_tokens;

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

/// Buckets kept before full ones are pruned.
const PRUNE_AT: usize = 1024;

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let per_second = NonZeroU32::new(limit.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limit.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
        }
    }

    /// Ok, or the seconds to wait.
    fn check(&self, id: &str) -> Result<(), u64> {
        if self.inner.len() > PRUNE_AT {
            self.inner.retain_recent();
        }
        self.inner.check_key(&id.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// Who is calling: a valid token's role.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// What the token may do.
    pub role: ApiRole,
}

impl Caller {
    /// 403 unless the token's role allows `role`.
    pub(crate) fn need(&self, role: ApiRole) -> Result<(), ApiError> {
        if self.role.allows(role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs a token with the {role} role; this token's role is {}",
                self.role
            )))
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for Caller {
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
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer TOKEN`")
            })?;
        let role = match api_tokens::check(&state.shared, text)? {
            Ok(role) => role,
            Err(why) => return Err(ApiError::unauthorized(why.message())),
        };
        let id = api_tokens::id_of(text).unwrap_or_default();
        state.limiter.check(id).map_err(ApiError::rate_limited)?;
        Ok(Self { role })
    }
}
