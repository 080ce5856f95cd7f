//! Where untrusted work runs.
//!
//! The wasm side hosts wasmtime with WASI preview 1: every task gets fuel, a
//! memory and table ceiling, a wall-clock deadline, capped stdout/stderr, and
//! nothing of the host unless the task is given it (no files, no network, no
//! inherited environment). One [`WasmRuntime`] per process owns the engine,
//! the pooling allocator and the compiled-module cache, so a warm task costs
//! an instantiation from a pre-linked module and not a compilation.
//!
//! Every way a task can end maps onto one [`fabric_proto::TaskStatus`]; a
//! guest's own non-zero exit is `failed` and never confused with a trap or a
//! limit.

mod disk_cache;
mod error;
mod events;
mod host;
mod inspect;
mod limiter;
mod output;
mod run;
mod runtime;
mod ticker;

pub use disk_cache::DEFAULT_MAX_DISK_CACHE_BYTES;
pub use error::SandboxError;
pub use inspect::inspect_module;
pub use run::{SCRATCH_GUEST_PATH, WasmTask};
pub use runtime::{PreparedModule, WasmRuntime, WasmRuntimeConfig};

#[cfg(test)]
mod tests;
