//! End-to-end tests: the real `fabric` binary on real guests.
//!
//! The test binary is `e2e/` (one module per area); everything the tests
//! share lives in [`harness`].

pub mod harness;
