//! Injected write failures, for tests of what the dispatcher does when its
//! store fails (feature `faults`; without it the check is free).

#[cfg(feature = "faults")]
use std::sync::Arc;
#[cfg(feature = "faults")]
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Result;
#[cfg(feature = "faults")]
use crate::{Store, StoreError};

/// Whether task writes fail, and whether flushes do.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    #[cfg(feature = "faults")]
    fail_writes: Arc<AtomicBool>,
    #[cfg(feature = "faults")]
    fail_flushes: Arc<AtomicBool>,
}

impl Faults {
    /// An error when writes are set to fail.
    pub(crate) fn check(&self) -> Result<()> {
        #[cfg(feature = "faults")]
        fail_if(&self.fail_writes, "injected write failure")?;
        Ok(())
    }

    /// An error when flushes are set to fail.
    pub(crate) fn check_flush(&self) -> Result<()> {
        #[cfg(feature = "faults")]
        fail_if(&self.fail_flushes, "injected flush failure")?;
        Ok(())
    }
}

#[cfg(feature = "faults")]
fn fail_if(on: &AtomicBool, what: &str) -> Result<()> {
    if on.load(Ordering::Acquire) {
        return Err(StoreError::Io(std::io::Error::other(what.to_owned())));
    }
    Ok(())
}

#[cfg(feature = "faults")]
impl Store {
    /// From now on task writes (records and results) fail, or succeed again.
    pub fn fail_writes(&self, on: bool) {
        self.faults.fail_writes.store(on, Ordering::Release);
    }

    /// From now on flushes fail (what was written stays written), or
    /// succeed again.
    pub fn fail_flushes(&self, on: bool) {
        self.faults.fail_flushes.store(on, Ordering::Release);
    }
}
