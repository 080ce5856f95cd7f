//! Harness for the end-to-end tests: the real `fabric` binary, run in a fresh
//! temporary home, on guests built by `build.rs` and WAT fixtures.
//!
//! - [`sandbox`]: the built binary and guests, a scratch home per test, and
//!   helpers for finished commands.
//! - [`deadline`]: commands run to completion under a deadline that fails
//!   with the command line and its output so far.
//! - [`process`]: long-running children ([`process::Proc`]) read line by
//!   line, killed on drop.
//! - [`cluster`]: real `fabric dispatcher` / `fabric worker` processes,
//!   clients on their profiles, network namespaces and task fixtures.
//! - [`readme`]: README.md's fenced blocks.
//! - [`native`]: `fabric up` allowing native programs, for `fabric run`.
//! - [`rest`]: `fabric up` with its REST API, and an HTTP client.
//! - [`raw_http`]: raw TCP for idle connections and slow bodies.
//! - [`browser`]: headless Chromium over the DevTools protocol.
//! - [`group`]: a group of dispatchers on Raft (`--peer`), its workers and clients.
//! - [`fake_dispatcher`]: a dispatcher played by the test, for driving a real
//!   worker with hand-made manifests.

pub mod browser;
pub mod cluster;
pub mod deadline;
pub mod fake_dispatcher;
pub mod group;
pub mod native;
pub mod ports;
pub mod process;
pub mod raw_http;
pub mod readme;
pub mod rest;
pub mod sandbox;
