//! Caps on open event streams: per token and in all. A stream holds a
//! [`StreamSlot`] for as long as it is open; dropping it gives the slot
//! back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::error::ApiError;
use crate::service::state::Shared;

/// Open event streams one token may hold.
pub(crate) const STREAMS_PER_TOKEN: u32 = 32;
/// Open event streams in all.
pub(crate) const STREAMS_IN_ALL: u32 = 512;

/// Open streams per token id.
#[derive(Debug, Default)]
pub(crate) struct StreamSlots {
    open: Arc<Mutex<HashMap<String, u32>>>,
}

/// One open stream's slot.
#[derive(Debug)]
pub(crate) struct StreamSlot {
    open: Arc<Mutex<HashMap<String, u32>>>,
    token: String,
}

impl StreamSlots {
    /// A slot for `token`, or 429 when it (or everyone) has too many open.
    pub(crate) fn take(&self, token: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let total: u32 = open.values().sum();
        let mine = open.get(token).copied().unwrap_or(0);
        if mine >= STREAMS_PER_TOKEN || total >= STREAMS_IN_ALL {
            return Err(ApiError::too_many_streams(if mine >= STREAMS_PER_TOKEN {
                format!("this token has {mine} event streams open, the most it may; close one")
            } else {
                format!("the dispatcher serves {total} event streams, the most it may; retry later")
            }));
        }
        *open.entry(token.to_owned()).or_default() += 1;
        Ok(StreamSlot {
            open: self.open.clone(),
            token: token.to_owned(),
        })
    }
}

impl StreamSlot {
    /// Whether the token that opened the stream is still accepted.
    pub(crate) fn token_valid(&self, shared: &Shared) -> bool {
        matches!(shared.store.api_token(&self.token), Ok(Some(r)) if r.is_valid(shared.now()))
    }
}

impl Drop for StreamSlot {
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
    use super::{STREAMS_PER_TOKEN, StreamSlots};

    #[test]
    fn slots_are_capped_per_token_and_given_back() {
        let slots = StreamSlots::default();
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
}
