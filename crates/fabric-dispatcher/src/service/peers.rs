//! How many connections each key holds, against the per-role limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::config::PeerLimits;

/// Open connections by key (keys without a role counted together).
#[derive(Debug, Default)]
pub(crate) struct PeerCount {
    by_key: Mutex<HashMap<[u8; 32], u32>>,
    unknown: Mutex<u32>,
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub(crate) struct Counted {
    count: Arc<PeerCount>,
    key: [u8; 32],
    known: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.known {
            let mut map = self.count.by_key.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&self.key);
                }
            }
        } else {
            *self.count.unknown.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        }
    }
}

impl PeerCount {
    /// Counts a new connection of `key`, or says which limit it is over.
    pub(crate) fn admit(
        self: &Arc<Self>,
        key: [u8; 32],
        known: bool,
        limits: &PeerLimits,
    ) -> Result<Counted, String> {
        if known {
            let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(key).or_default();
            if *n >= limits.connections_per_key {
                return Err(format!(
                    "this key already has {n} connections (the limit is {})",
                    limits.connections_per_key
                ));
            }
            *n += 1;
        } else {
            let mut n = self.unknown.lock().unwrap_or_else(|p| p.into_inner());
            if *n >= limits.unknown_connections {
                return Err(format!(
                    "{n} connections of keys without a role are open (the limit is {})",
                    limits.unknown_connections
                ));
            }
            *n += 1;
        }
        Ok(Counted {
            count: self.clone(),
            key,
            known,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_key_and_released() {
        let count = Arc::new(PeerCount::default());
        let limits = PeerLimits {
            connections_per_key: 2,
            unknown_connections: 1,
            ..PeerLimits::default()
        };
        let a = count.admit([1; 32], true, &limits).unwrap();
        let _b = count.admit([1; 32], true, &limits).unwrap();
        assert!(count.admit([1; 32], true, &limits).is_err());
        assert!(count.admit([2; 32], true, &limits).is_ok(), "per key");
        drop(a);
        assert!(count.admit([1; 32], true, &limits).is_ok());
        let u = count.admit([3; 32], false, &limits).unwrap();
        assert!(count.admit([4; 32], false, &limits).is_err());
        drop(u);
        assert!(count.admit([4; 32], false, &limits).is_ok());
    }
}
