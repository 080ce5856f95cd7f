//! The Fabric dispatcher.
//!
//! [`Dispatcher::start`] opens the store, reloads unfinished tasks, listens
//! for QUIC connections and runs three loops: one accepts connections and
//! serves their streams, one places ready tasks on workers, one ticks the
//! clock (heartbeat deadlines, retry delays). The decisions live in the
//! [`scheduler`] state machine; this crate wires it to the store and the
//! network. Everything acknowledged to a client or worker is flushed first
//! (group commit).

mod admission;
pub mod scheduler;
mod service;

pub use service::{Dispatcher, DispatcherConfig, DispatcherError};
