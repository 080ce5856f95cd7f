//! Time as the dispatcher and the worker read it, behind a trait so tests
//! can move it by hand instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of "now" in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in ms since the epoch.
    fn now_ms(&self) -> u64;
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock read once at creation, advanced by a monotonic clock:
/// timestamps stay epoch milliseconds, but a wall-clock step (NTP) while
/// running cannot make every worker look dead at once.
#[derive(Debug)]
pub struct SystemClock {
    at: Instant,
    wall_ms: u64,
}

impl SystemClock {
    /// A clock starting at the machine's wall clock now.
    pub fn new() -> Self {
        Self {
            at: Instant::now(),
            wall_ms: crate::now_ms(),
        }
    }

    /// A shared handle to a new system clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.wall_ms + self.at.elapsed().as_millis() as u64
    }
}

/// A clock that only moves when told to. Starts at the wall clock's now, so
/// manifests it stamps look current to peers reading the real clock.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A manual clock standing at the wall clock's now.
    pub fn new() -> Arc<Self> {
        Self::at(crate::now_ms())
    }

    /// A manual clock standing at `ms`.
    pub fn at(ms: u64) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicU64::new(ms),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_millis(250));
        assert_eq!(c.now_ms(), 1_250);
    }

    #[test]
    fn system_clock_starts_at_the_wall_clock() {
        // Its reading falls between two wall-clock readings taken around
        // it (an order of events, not a bound on how long that took; the
        // 1 ms is the two whole-millisecond roundings it adds together).
        let before = crate::now_ms();
        let c = SystemClock::new();
        let read = c.now_ms();
        let after = crate::now_ms();
        assert!(
            before <= read && read <= after + 1,
            "{before} <= {read} <= {after} + 1"
        );
    }
}
