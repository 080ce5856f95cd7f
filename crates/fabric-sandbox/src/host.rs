//! The `fabric` import module: what the guest SDK calls besides WASI.
//!
//! ABI (all optional; a module that imports none of them is plain WASI):
//! - `fabric.progress(done: i64, total: i64)`
//! - `fabric.log(level: i32, ptr: i32, len: i32)`: a UTF-8 message in guest
//!   memory; level 0 = error ... 4 = trace.
//!
//! Guests cannot flood the host through these: a log message is cut to
//! [`MAX_LOG_MESSAGE`] bytes, every log call (empty ones too) is charged
//! against the task's budget of lines and bytes, and progress is coalesced
//! to its latest value a few times a second (see `events.rs`).

use std::time::Instant;

use fabric_proto::LogLevel;
use wasmtime::{Caller, Extern, Linker};

use crate::run::TaskState;

/// Longest log message kept, in bytes.
pub(crate) const MAX_LOG_MESSAGE: usize = 4096;

/// Import module name the guest SDK uses.
pub(crate) const MODULE: &str = "fabric";

pub(crate) fn add_to_linker(linker: &mut Linker<TaskState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "progress",
        |mut caller: Caller<'_, TaskState>, done: i64, total: i64| {
            caller.data_mut().events.progress(
                done.max(0) as u64,
                total.max(0) as u64,
                Instant::now(),
            );
        },
    )?;
    linker.func_wrap(
        MODULE,
        "log",
        |mut caller: Caller<'_, TaskState>,
         level: i32,
         ptr: i32,
         len: i32|
         -> wasmtime::Result<()> {
            if caller.data().events.log_spent() {
                return Ok(());
            }
            let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                return Err(wasmtime::Error::msg("fabric.log: module exports no memory"));
            };
            let start = ptr as u32 as usize;
            let len = (len as u32 as usize).min(MAX_LOG_MESSAGE);
            let bytes = memory
                .data(&caller)
                .get(start..start.saturating_add(len))
                .ok_or_else(|| {
                    wasmtime::Error::msg("fabric.log: message is out of bounds of guest memory")
                })?;
            let message = String::from_utf8_lossy(bytes).into_owned();
            caller
                .data_mut()
                .events
                .log(LogLevel::from_abi(level), message);
            Ok(())
        },
    )?;
    Ok(())
}
