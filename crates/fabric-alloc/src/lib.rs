//! The global allocator of `fabric` and of the benches.
//!
//! mimalloc: glibc's malloc and free were a ninth of the cluster's time
//! per task (BENCHMARKS.md). Tuned for a small footprint:
//! - built without transparent huge pages (the sys crate's `no_thp`).
//!   With them, mimalloc advises huge pages on its arenas, and on a kernel
//!   whose THP mode is `madvise` every touched 2 MiB range became
//!   resident whole: `fabric up` peaked at 120 MiB where glibc peaks at
//!   49 (the `guest_floods` bound is 101); without, 52;
//! - freed memory goes back to the OS at once (`purge_delay` 0, where v3
//!   waits a second), so a burst's memory does not linger.
//!
//! The native sandbox's helper is the same binary, re-executed by the
//! worker, and it runs under the task's address-space limit: mimalloc
//! reserves its arenas as large virtual ranges up front, which that limit
//! refuses. So a process started with [`SYSTEM_ALLOCATOR_VAR`] set keeps
//! the system allocator. The choice is made once, at the first
//! allocation, before any thread can exist, and never changes; memory is
//! always freed by the allocator that gave it.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, Ordering};

/// Set (to anything) in a process's environment to keep it on the system
/// allocator; the worker sets it for the sandbox helper.
pub const SYSTEM_ALLOCATOR_VAR: &str = "FABRIC_SYSTEM_ALLOCATOR";

/// [`SYSTEM_ALLOCATOR_VAR`] for `getenv`.
const SYSTEM_ALLOCATOR_C: &std::ffi::CStr = c"FABRIC_SYSTEM_ALLOCATOR";

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

/// mimalloc v3's `mi_option_purge_delay` (its `mimalloc.h`; the sys crate
/// does not name it): milliseconds before freed memory goes back to the
/// OS, 10 by default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Which allocator this process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// glibc's malloc (the sandbox helper).
    System,
    /// mimalloc, purging at once.
    Mimalloc,
}

/// The allocator this process uses (deciding it if nothing has allocated
/// yet).
pub fn choice() -> Choice {
    match decided() {
        SYSTEM => Choice::System,
        _ => Choice::Mimalloc,
    }
}

#[inline]
fn decided() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => decide(),
        c => c,
    }
}

#[cold]
fn decide() -> u8 {
    // `getenv` allocates nothing; this runs inside the first allocation.
    // SAFETY: the name is a NUL-terminated literal; nothing sets the
    // environment before the first allocation.
    let system = unsafe { !libc::getenv(SYSTEM_ALLOCATOR_C.as_ptr()).is_null() };
    let c = if system {
        SYSTEM
    } else {
        // SAFETY: plain option setters of mimalloc, callable at any time.
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
        MIMALLOC
    };
    // Two threads cannot race here (the first allocation comes before
    // any thread), and both would decide the same anyway.
    CHOICE.store(c, Ordering::Relaxed);
    c
}

/// The global allocator: `#[global_allocator] static A: fabric_alloc::Fabric = fabric_alloc::Fabric;`
#[derive(Debug, Default)]
pub struct Fabric;

// SAFETY: both arms forward to a correct allocator, and a process never
// switches (see `decide`), so every block is freed by the one that gave it.
unsafe impl GlobalAlloc for Fabric {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if decided() == SYSTEM {
            return unsafe { System.alloc(layout) };
        }
        unsafe { libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast() }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if decided() == SYSTEM {
            return unsafe { System.alloc_zeroed(layout) };
        }
        unsafe { libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast() }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if decided() == SYSTEM {
            return unsafe { System.dealloc(ptr, layout) };
        }
        unsafe { libmimalloc_sys::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if decided() == SYSTEM {
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        unsafe {
            libmimalloc_sys::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align())
                .cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static A: Fabric = Fabric;

    #[test]
    fn the_two_spellings_of_the_variable_agree() {
        assert_eq!(SYSTEM_ALLOCATOR_C.to_str().unwrap(), SYSTEM_ALLOCATOR_VAR);
    }

    /// A child started with the variable set keeps the system allocator,
    /// one without it uses mimalloc (the test binary re-runs itself).
    #[test]
    fn the_variable_picks_the_system_allocator_and_its_absence_mimalloc() {
        if let Ok(want) = std::env::var("FABRIC_ALLOC_TEST_EXPECT") {
            let got = format!("{:?}", choice());
            assert_eq!(got, want, "this process chose {got}");
            if choice() == Choice::Mimalloc {
                // SAFETY: a read of an option.
                let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
                assert_eq!(delay, 0, "the purge delay was not set");
            }
            return;
        }
        let exe = std::env::current_exe().unwrap();
        for (system, want) in [(true, "System"), (false, "Mimalloc")] {
            let mut cmd = std::process::Command::new(&exe);
            cmd.args([
                "--exact",
                "tests::the_variable_picks_the_system_allocator_and_its_absence_mimalloc",
                "--nocapture",
            ])
            .env("FABRIC_ALLOC_TEST_EXPECT", want)
            .env_remove(SYSTEM_ALLOCATOR_VAR);
            if system {
                cmd.env(SYSTEM_ALLOCATOR_VAR, "1");
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "child with the variable {}: {}",
                if system { "set" } else { "unset" },
                String::from_utf8_lossy(&out.stdout)
            );
            // The child ran the test, not zero tests.
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("1 passed"),
                "the child ran no test: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        let v: Vec<u64> = (0..10_000).collect();
        assert_eq!(v.iter().sum::<u64>(), 49_995_000);
    }
}
