//! The host side of progress and logging: the `fabric` wasm import module on
//! wasm32, stderr on the host.

/// Log severity; the numeric values are the guest ABI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LogLevel {
    /// Something failed.
    Error = 0,
    /// Something looks wrong.
    Warn = 1,
    /// Normal information.
    Info = 2,
    /// Detail for debugging.
    Debug = 3,
    /// Very fine detail.
    Trace = 4,
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod abi {
    #[link(wasm_import_module = "fabric")]
    unsafe extern "C" {
        #[link_name = "progress"]
        fn fabric_progress(done: i64, total: i64);
        #[link_name = "log"]
        fn fabric_log(level: i32, ptr: *const u8, len: usize);
    }

    pub(super) fn progress(done: u64, total: u64) {
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        // SAFETY: plain integers; the host validates nothing else.
        unsafe { fabric_progress(clamp(done), clamp(total)) }
    }

    pub(super) fn log(level: i32, message: &str) {
        // SAFETY: the pointer and length describe a live, initialised byte
        // slice for the duration of the call; the host only reads it.
        unsafe { fabric_log(level, message.as_ptr(), message.len()) }
    }
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn progress(done: u64, total: u64) {
    abi::progress(done, total);
}

#[cfg(target_arch = "wasm32")]
pub(crate) fn log(level: LogLevel, message: &str) {
    abi::log(level as i32, message);
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn progress(_done: u64, _total: u64) {}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn log(level: LogLevel, message: &str) {
    use std::io::Write as _;
    let name = match level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let _ = writeln!(std::io::stderr(), "[{name}] {message}");
}
