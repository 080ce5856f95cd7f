//! The global allocator of `fabric` and of the benches.
//!
//! mimalloc: glibc's malloc and free were a ninth of the cluster's time
//! per task (BENCHMARKS.md). Tuned for a small footprint:
//! - no transparent huge pages. With them every 2 MiB range of an arena
//!   that mimalloc touched became resident whole: `fabric up` peaked at
//!   120 MiB where glibc peaks at 49 (the `guest_floods` bound is 101);
//!   without, 52. mimalloc is built with the sys crate's `no_thp` (no
//!   `madvise(MADV_HUGEPAGE)` of its own, which a kernel in THP mode
//!   `madvise` follows), and the process turns THP off for itself
//!   (`PR_SET_THP_DISABLE`), which a kernel in mode `always` follows;
//! - freed memory goes back to the OS after 10 ms (`purge_delay`, v2's
//!   default; v3 waits a second), so a burst's memory does not linger.
//!   At once (0) cost 5% of the cluster's throughput in page faults of
//!   memory purged and touched again (BENCHMARKS.md). `MIMALLOC_PURGE_DELAY`
//!   in the environment overrides it.
//!
//! The native sandbox's helper is the same binary, re-executed by the
//! worker, and it runs under the task's address-space limit: mimalloc
//! reserves its arenas as large virtual ranges up front, which that limit
//! refuses. So a process started with [`SYSTEM_ALLOCATOR_VAR`] set keeps
//! the system allocator. The choice is made once, at the first
//! allocation, before any thread can exist, and never changes; memory is
//! always freed by the allocator that gave it. (mimalloc's own start-up,
//! a C constructor, still runs in such a process: it maps its page map,
//! about 2 MiB, and reserves no arena.) Such a process also turns THP back
//! on for itself, so the tasks the helper starts get the host's default.

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
/// OS; v3's default is 1,000.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds before freed memory goes back to the OS.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Which allocator this process uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// glibc's malloc (the sandbox helper).
    System,
    /// mimalloc, without huge pages, purging after 10 ms.
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
    // SAFETY: an option setter of mimalloc, callable at any time, and
    // prctls on this process only; none allocates.
    let c = unsafe {
        if system {
            // THP off is inherited from the worker: give the helper's
            // tasks the host's default back.
            libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
            SYSTEM
        } else {
            // An operator's `MIMALLOC_PURGE_DELAY` wins (mimalloc reads it).
            if libc::getenv(c"MIMALLOC_PURGE_DELAY".as_ptr()).is_null() {
                libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
            }
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
            MIMALLOC
        }
    };
    // Two threads cannot race here (the first allocation comes before
    // any thread), and both would decide the same anyway.
    CHOICE.store(c, Ordering::Relaxed);
    c
}

/// Gives memory freed in bulk (a restart's reading) back to the system:
/// mimalloc's, when this process allocates through [`Fabric`], and glibc's
/// arenas (`malloc_trim`) in any case (a process whose global allocator is
/// not [`Fabric`], or that chose the system allocator).
pub fn give_back() {
    // Not `decided()`: in a process that never allocated through `Fabric`
    // nothing has chosen, and mimalloc holds nothing of Rust's.
    if CHOICE.load(Ordering::Relaxed) == MIMALLOC {
        // SAFETY: collects this thread's and abandoned free pages.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of glibc's arenas back to
    // the kernel; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
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
            // SAFETY: a read of an option; a heap-region check of a live
            // box; a prctl read.
            let (delay, in_mimalloc, no_thp) = unsafe {
                let b = Box::new(7u64);
                let p = (&*b as *const u64).cast::<c_void>();
                (
                    libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                    libmimalloc_sys::mi_is_in_heap_region(p),
                    libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0),
                )
            };
            if choice() == Choice::Mimalloc {
                assert_eq!(delay, PURGE_DELAY_MS, "the purge delay was not set");
                assert!(in_mimalloc, "a Box is not in mimalloc's heap");
                assert_eq!(no_thp, 1, "THP is not off");
            } else {
                // The parent set MIMALLOC_PURGE_DELAY=1234: reading it back
                // through our index proves the index names purge_delay.
                assert_eq!(
                    delay, 1234,
                    "index {MI_OPTION_PURGE_DELAY} is not purge_delay"
                );
                assert!(!in_mimalloc, "a Box is in mimalloc's heap");
                assert_eq!(no_thp, 0, "THP is still off in the helper");
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
            .env_remove(SYSTEM_ALLOCATOR_VAR)
            .env_remove("MIMALLOC_PURGE_DELAY");
            if system {
                cmd.env(SYSTEM_ALLOCATOR_VAR, "1")
                    .env("MIMALLOC_PURGE_DELAY", "1234");
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
