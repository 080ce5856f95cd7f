//! Memory and table ceilings for one task, with peak tracking.
//!
//! Growth past the task's limit traps with a [`LimitExceeded`] error instead
//! of quietly returning -1 from `memory.grow`: a guest allocator that cannot
//! grow aborts anyway, and trapping lets the outcome say `memory_exceeded`
//! rather than an opaque `unreachable`.

use std::fmt;

use wasmtime::ResourceLimiter;

/// A task tried to grow past its memory or table limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LimitExceeded {
    Memory { limit: usize, desired: usize },
    Table { limit: usize, desired: usize },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory { limit, desired } => write!(
                f,
                "linear memory would grow to {desired} bytes, over the limit of {limit} bytes"
            ),
            Self::Table { limit, desired } => write!(
                f,
                "table would grow to {desired} elements, over the limit of {limit} elements"
            ),
        }
    }
}

impl std::error::Error for LimitExceeded {}

pub(crate) struct TaskLimiter {
    memory_limit: usize,
    table_limit: usize,
    peak_memory: usize,
}

impl TaskLimiter {
    pub(crate) fn new(memory_limit: usize, table_limit: usize) -> Self {
        Self {
            memory_limit,
            table_limit,
            peak_memory: 0,
        }
    }

    pub(crate) fn peak_memory(&self) -> usize {
        self.peak_memory
    }
}

impl ResourceLimiter for TaskLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Err(wasmtime::Error::new(LimitExceeded::Memory {
                limit: self.memory_limit,
                desired,
            }));
        }
        if maximum.is_some_and(|max| desired > max) {
            // The module's own declared maximum: plain wasm semantics (-1).
            return Ok(false);
        }
        self.peak_memory = self.peak_memory.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.table_limit {
            return Err(wasmtime::Error::new(LimitExceeded::Table {
                limit: self.table_limit,
                desired,
            }));
        }
        Ok(maximum.is_none_or(|max| desired <= max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_past_limit_is_an_error_and_peak_is_tracked() {
        let mut l = TaskLimiter::new(1 << 20, 10);
        assert!(l.memory_growing(0, 65536, None).unwrap());
        assert_eq!(l.peak_memory(), 65536);
        let err = l.memory_growing(65536, 2 << 20, None).unwrap_err();
        assert!(err.is::<LimitExceeded>());
        assert!(!l.memory_growing(0, 131072, Some(65536)).unwrap());
        assert!(l.table_growing(0, 10, None).unwrap());
        assert!(l.table_growing(0, 11, None).is_err());
    }
}
