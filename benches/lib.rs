//! Shared fixtures for Fabric's benches.

use fabric_proto::Limits;
use fabric_sandbox::{WasmRuntime, WasmRuntimeConfig, WasmTask};

/// The smallest useful task: a WASI command whose `_start` does a little
/// arithmetic and returns.
pub const TRIVIAL_WAT: &str = r#"(module
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func (export "_start")
    (global.set $g (i32.add (global.get $g) (i32.const 1)))))"#;

/// The trivial module's bytes.
pub fn trivial_wasm() -> Vec<u8> {
    wat::parse_str(TRIVIAL_WAT).expect("valid WAT")
}

/// A runtime as a worker would configure it (pooling, no disk cache).
pub fn runtime() -> WasmRuntime {
    WasmRuntime::new(WasmRuntimeConfig::default()).expect("runtime")
}

/// A task with default limits and no input.
pub fn task() -> WasmTask {
    WasmTask {
        program_name: "trivial.wasm".into(),
        limits: Limits::default(),
        ..WasmTask::default()
    }
}
