//! Caps per token: on open event streams (per token and in all) and on
//! requests in flight (per token, so that one token's slow uploads cannot
//! take every request slot: issue 20, item 9). A request or stream holds
//! a [`Slot`] for as long as it is served; dropping it gives the slot back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::error::ApiError;
use fabric_dispatcher::front::Shared;

/// Open event streams one token may hold.
pub(crate) const STREAMS_PER_TOKEN: u32 = 32;
/// Open event streams in all.
pub(crate) const STREAMS_IN_ALL: u32 = 512;
/// Requests one token may have in flight by default (an eighth of the
/// requests served at once, `MAX_IN_FLIGHT` in `api/mod.rs`).
pub(crate) const REQUESTS_PER_TOKEN: u32 = 32;

/// Slots per token id, with their caps.
#[derive(Debug)]
pub(crate) struct TokenSlots {
    open: Arc<Mutex<HashMap<String, u32>>>,
    per_token: u32,
    in_all: u32,
    /// What a slot is for, plural ("event streams"), for messages.
    what: &'static str,
}

/// One held slot.
#[derive(Debug)]
pub(crate) struct Slot {
    open: Arc<Mutex<HashMap<String, u32>>>,
    token: String,
}

impl TokenSlots {
    /// Event streams: [`STREAMS_PER_TOKEN`], [`STREAMS_IN_ALL`].
    pub(crate) fn streams() -> Self {
        Self::new(STREAMS_PER_TOKEN, STREAMS_IN_ALL, "event streams open")
    }

    /// Requests in flight: `per_token` (the cap in all is the API's
    /// concurrency limit, where requests wait instead).
    pub(crate) fn requests(per_token: u32) -> Self {
        Self::new(per_token, u32::MAX, "requests in flight")
    }

    fn new(per_token: u32, in_all: u32, what: &'static str) -> Self {
        Self {
            open: Arc::default(),
            per_token,
            in_all,
            what,
        }
    }

    /// A slot for `token`, or 429 when it (or everyone) has too many.
    pub(crate) fn take(&self, token: &str) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.get(token).copied().unwrap_or(0);
        if mine >= self.per_token {
            return Err(ApiError::too_many(format!(
                "this token has {mine} {}, the most it may; retry when one ends",
                self.what
            )));
        }
        if self.in_all != u32::MAX {
            let total: u32 = open.values().sum();
            if total >= self.in_all {
                return Err(ApiError::too_many(format!(
                    "the dispatcher has {total} {}, the most it may; retry later",
                    self.what
                )));
            }
        }
        *open.entry(token.to_owned()).or_default() += 1;
        Ok(Slot {
            open: self.open.clone(),
            token: token.to_owned(),
        })
    }
}

impl TokenSlots {
    /// Slots held now, by every token.
    pub(crate) fn total(&self) -> u32 {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.values().sum()
    }
}

impl Slot {
    /// Whether the token that took the slot is still accepted.
    pub(crate) fn token_valid(&self, shared: &Shared) -> bool {
        matches!(shared.store.api_token(&self.token), Ok(Some(r)) if r.is_valid(shared.now()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{REQUESTS_PER_TOKEN, STREAMS_PER_TOKEN, TokenSlots};

    #[test]
    fn slots_are_capped_per_token_and_given_back() {
        let slots = TokenSlots::streams();
        let held: Vec<_> = (0..STREAMS_PER_TOKEN)
            .map(|_| slots.take("a").unwrap())
            .collect();
        assert!(slots.take("a").is_err());
        let other = slots.take("b").expect("another token has its own");
        drop(held);
        drop(other);
        assert!(slots.open.lock().unwrap().is_empty());
        assert!(slots.take("a").is_ok());
    }

    #[test]
    fn streams_are_capped_in_all() {
        let slots = TokenSlots::new(2, 3, "things");
        let _a = (slots.take("a").unwrap(), slots.take("a").unwrap());
        let _b = slots.take("b").unwrap();
        assert!(slots.take("c").is_err(), "three in all");
    }

    #[test]
    fn requests_are_capped_per_token_only() {
        let slots = TokenSlots::requests(REQUESTS_PER_TOKEN);
        let held: Vec<_> = (0..REQUESTS_PER_TOKEN)
            .map(|_| slots.take("a").unwrap())
            .collect();
        let refused = slots.take("a").unwrap_err();
        assert!(format!("{refused:?}").contains("requests in flight"));
        let others: Vec<_> = (0..1000).map(|i| slots.take(&i.to_string())).collect();
        assert!(others.iter().all(Result::is_ok));
        drop(held);
    }
}
