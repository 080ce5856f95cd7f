//! Errors from preparing a module. Failures of a task while it runs are not
//! errors here: they are outcomes ([`fabric_proto::TaskOutcome`]).

use std::path::PathBuf;

/// Setting up the runtime or preparing a module failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The engine could not be configured (bad runtime configuration).
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a valid WebAssembly module.
    #[error("invalid wasm module: {0}")]
    InvalidModule(String),
    /// The module imports something the sandbox does not provide.
    #[error("module cannot be linked: {0}")]
    Link(String),
    /// The module has no `_start` entry point.
    #[error(
        "module has no `_start` export: build it as a wasm32-wasip1 program (a binary crate with `fn main`)"
    )]
    NoEntryPoint,
    /// The on-disk compiled-module cache could not be used.
    #[error("module cache at {path}: {source}")]
    Cache {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}
